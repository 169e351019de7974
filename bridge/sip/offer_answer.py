"""Offer/answer state of one call's audio stream (RFC 3264), with SDES keys (RFC 4568), sans-IO.

Keeps our current SDP; accepts the answer to our offer; answers offers from the
far end (re-INVITE, UPDATE), choosing the direction per RFC 3264 section 6.1 and
bumping the origin version whenever our description changes (section 8).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bridge.sip.sdes import CryptoAttribute, SdesError, SrtpKeys, SrtpMode, answer_crypto, keys_from_answer
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
    """Where the far end's audio comes from, its direction, and the SRTP keys if any."""

    address: tuple[str, int]
    direction: Direction
    srtp: SrtpKeys | None = None
    telephone_event: bool = False  # the far end accepted RFC 4733 events

    @property
    def sending(self) -> bool:
        return self.direction in _SENDS

    @property
    def receiving(self) -> bool:
        return self.direction in _RECEIVES


class OfferAnswer:
    """Our SDP for the call and the far end's last accepted description."""

    def __init__(
        self, offer: SessionDescription, srtp: SrtpMode = SrtpMode.OFF, offered: list[CryptoAttribute] | None = None
    ) -> None:
        self.local = offer
        self.capability = offer.audio().direction
        self.srtp_mode = srtp
        self._offered = list(offered or [])
        self.keys: SrtpKeys | None = None
        self.remote: RemoteMedia | None = None

    def local_bytes(self) -> bytes:
        return self.local.serialize()

    def accept_answer(self, body: bytes) -> RemoteMedia:
        """The answer to our offer (2xx of INVITE, or an ACK after a delayed offer)."""
        description = parse_sdp(body)
        if self.srtp_mode is not SrtpMode.OFF and self.keys is None:
            self._take_keys(description)
        return self._take_remote(description)

    def answer_offer(self, body: bytes) -> bytes:
        """Answer a far-end offer; raise SdpError if we cannot (then reply 488)."""
        offer = parse_sdp(body)
        if self.keys is not None:
            self._rekey(offer)
        remote = self._take_remote(offer)
        self._set_local_direction(answer_direction(self.capability, remote.direction))
        return self.local_bytes()

    def offer_again(self) -> bytes:
        """Our description as a new offer (re-INVITE without SDP, or a session refresh)."""
        self._set_local_direction(self.capability)
        return self.local_bytes()

    def _take_keys(self, answer: SessionDescription) -> None:
        media = answer.audio()
        try:
            self.keys = keys_from_answer(self._offered, media.crypto)
        except SdesError as exc:
            raise SdpError(str(exc)) from None
        if self.srtp_mode is SrtpMode.MANDATORY and (self.keys is None or media.protocol != "RTP/SAVP"):
            raise SdpError("the far end refused SRTP, which this call requires")
        chosen = [c for c in self._offered if self.keys and c.suite == self.keys.suite]
        self._replace_local(crypto=[c.value() for c in chosen[:1]])

    def _rekey(self, offer: SessionDescription) -> None:
        """RFC 4568 section 7.1.4: a re-offer carries keys again; answer under its tag with ours."""
        assert self.keys is not None
        answered = answer_crypto(offer.audio().crypto, self.keys)
        if answered is None:
            raise SdpError("the re-offer drops SRTP keys for our suite")
        crypto, self.keys = answered
        self._replace_local(crypto=[crypto.value()], protocol=offer.audio().protocol)

    def _take_remote(self, description: SessionDescription) -> RemoteMedia:
        if not accepts_pcmu(description):
            raise SdpError("the far end does not offer or accept PCMU")
        audio = description.audio()
        events = any(f.encoding.lower() == "telephone-event" for f in audio.formats)
        self.remote = RemoteMedia(description.audio_address(), audio.direction, self.keys, events)
        return self.remote

    def _set_local_direction(self, direction: Direction) -> None:
        if self.local.audio().direction is not direction:
            self._replace_local(direction=direction)

    def _replace_local(self, **changes: object) -> None:
        media = self.local.audio()
        before = (media.direction, media.crypto, media.protocol)
        for name, value in changes.items():
            setattr(media, name, value)
        if (media.direction, media.crypto, media.protocol) != before:
            self.local = dataclasses.replace(self.local, session_version=self.local.session_version + 1)
