"""What the far end's media is doing: where it is, whether it sends and listens (hold)."""

from __future__ import annotations

from bridge.sip.events import MediaChanged

_SENDING = {"sendrecv", "sendonly"}
_RECEIVING = {"sendrecv", "recvonly"}


class FarEndMedia:
    """Updated by re-INVITE/UPDATE offers; drives silence sending and the RTP timeout."""

    def __init__(self, address: tuple[str, int], now: float) -> None:
        self.address = address
        self.sending = True
        self.receiving = True
        self._changed_at = now

    @property
    def held(self) -> bool:
        """The far end put us on hold (sendonly or inactive, RFC 3264 section 8.4)."""
        return not self.receiving

    def update(self, change: MediaChanged, now: float) -> bool:
        """Apply a change; returns whether the call is now held."""
        self.address = change.address
        self.sending = change.direction in _SENDING
        self.receiving = change.direction in _RECEIVING
        self._changed_at = now
        return self.held

    def silent_for(self, last_packet_at: float, now: float) -> float:
        """Seconds without RTP that count towards rtp.timeout (none while it says it sends nothing)."""
        if not self.sending:
            return 0.0
        return now - max(last_packet_at, self._changed_at)
