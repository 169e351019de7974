"""Offer/answer state of one call's audio stream (RFC 3264), sans-IO.

Keeps our current SDP; answers offers from the far end (re-INVITE, UPDATE),
choosing the direction per RFC 3264 section 6.1 and bumping the origin version
whenever our description changes (section 8).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bridge.sip.sdp import Direction, SdpError, SessionDescription, accepts_pcmu, parse_sdp

_SENDS = {Direction.SENDRECV, Direction.SENDONLY}
_RECEIVES = {Direction.SENDRECV, Direction.RECVONLY}


def _direction(send: bool, receive: bool) -> Direction:
    if send and receive:
        return Direction.SENDRECV
    if send:
        return Direction.SENDONLY
    if receive:
        return Direction.RECVONLY
    return Direction.INACTIVE


def answer_direction(capability: Direction, offered: Direction) -> Direction:
    """Our direction in an answer: we send only if they receive, receive only if they send."""
    send = capability in _SENDS and offered in _RECEIVES
    receive = capability in _RECEIVES and offered in _SENDS
    return _direction(send, receive)


@dataclass(frozen=True, slots=True)
class RemoteMedia:
    """Where the far end's audio comes from and whether it is sending and listening."""

    address: tuple[str, int]
    direction: Direction

    @property
    def sending(self) -> bool:
        return self.direction in _SENDS

    @property
    def receiving(self) -> bool:
        return self.direction in _RECEIVES


class OfferAnswer:
    """Our SDP for the call and the far end's last accepted description."""

    def __init__(self, offer: SessionDescription) -> None:
        self.local = offer
        self.capability = offer.audio().direction
        self.remote: RemoteMedia | None = None

    def local_bytes(self) -> bytes:
        return self.local.serialize()

    def accept_answer(self, body: bytes) -> RemoteMedia:
        """The answer to our offer (2xx of INVITE, or an ACK after a delayed offer)."""
        return self._take_remote(parse_sdp(body))

    def answer_offer(self, body: bytes) -> bytes:
        """Answer a far-end offer; raise SdpError if we cannot (then reply 488)."""
        offer = parse_sdp(body)
        remote = self._take_remote(offer)
        self._set_local_direction(answer_direction(self.capability, remote.direction))
        return self.local_bytes()

    def offer_again(self) -> bytes:
        """Our description as a new offer (re-INVITE without SDP, or a session refresh)."""
        self._set_local_direction(self.capability)
        return self.local_bytes()

    def _take_remote(self, description: SessionDescription) -> RemoteMedia:
        if not accepts_pcmu(description):
            raise SdpError("the far end does not offer or accept PCMU")
        self.remote = RemoteMedia(description.audio_address(), description.audio().direction)
        return self.remote

    def _set_local_direction(self, direction: Direction) -> None:
        media = self.local.audio()
        if media.direction is direction:
            return
        media.direction = direction
        self.local = dataclasses.replace(self.local, session_version=self.local.session_version + 1)
