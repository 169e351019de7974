"""What the far end's media is doing now: where it is, whether it sends and listens (hold)."""

from __future__ import annotations

from rtp.peer import Peer


class FarEndMedia:
    """Updated by re-INVITE/UPDATE offers; drives silence sending and the RTP timeout."""

    def __init__(self, peer: Peer, now: float) -> None:
        self.peer = peer
        self._changed_at = now

    @property
    def address(self) -> tuple[str, int]:
        return self.peer.address

    @property
    def receiving(self) -> bool:
        return self.peer.receiving

    @property
    def held(self) -> bool:
        """The far end put us on hold (sendonly or inactive, RFC 3264 section 8.4)."""
        return self.peer.held

    def update(self, peer: Peer, now: float) -> bool:
        """Apply a change; returns whether the call is now held."""
        self.peer = peer
        self._changed_at = now
        return peer.held

    def silent_for(self, last_packet_at: float, now: float) -> float:
        """Seconds without RTP that count towards rtp.timeout (none while it says it sends nothing)."""
        if not self.peer.sending:
            return 0.0
        return now - max(last_packet_at, self._changed_at)
