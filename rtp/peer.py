"""What the far end's media is: where it is, whether it sends and listens, its codec and keys.

One value, :class:`Peer`, made by the SIP side from an SDP answer or re-offer (RFC 3264) or by
an ingest connection, and carried as it is to the media worker. Media needs nothing of SIP to
use it: direction is two booleans (RFC 3264 section 6.1's sendrecv, sendonly, recvonly and
inactive are their four combinations), keys are SRTP master keys already agreed (RFC 4568).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """The agreed SRTP suite (RFC 4568 section 6.2), our outbound master key+salt and the far end's."""

    suite: str
    outbound: bytes
    inbound: bytes


@dataclass(frozen=True, slots=True)
class PeerVideo:
    """The far end's H.264 stream (RFC 6184): where from, payload type, parameter sets, feedback."""

    address: tuple[str, int]
    payload_type: int
    sprop: str = ""  # RFC 6184 section 8.1 sprop-parameter-sets
    pli: bool = False  # RFC 4585 picture loss indication allowed
    fir: bool = False  # RFC 5104 full intra request allowed
    send: bool = False  # whether we send our picture: we offered to send and the far end receives
    srtp: SrtpKeys | None = None  # the video line's own keys, when SRTP is on


@dataclass(frozen=True, slots=True)
class Peer:
    """The far end's audio: address, direction, codec (a name of :data:`rtp.codecs.CODECS`), keys."""

    address: tuple[str, int]
    sending: bool = True  # it sends us media (sendrecv or sendonly)
    receiving: bool = True  # it takes our media (sendrecv or recvonly)
    srtp: SrtpKeys | None = None
    telephone_event: bool = False  # it accepted RFC 4733 events
    codec: str = "pcmu"
    payload_type: int = 0
    event_payload_type: int = 101
    video: PeerVideo | None = None  # None: no video offered, or the far end declined it

    @property
    def held(self) -> bool:
        """We are on hold: the far end takes none of our media (sendonly or inactive, RFC 3264 8.4)."""
        return not self.receiving

    @property
    def direction(self) -> str:
        """The RFC 3264 word for the far end's direction, as SDP and the timeline name it."""
        if self.sending:
            return "sendrecv" if self.receiving else "sendonly"
        return "recvonly" if self.receiving else "inactive"
