"""Offer/answer state of one call's audio stream (RFC 3264), with SDES keys (RFC 4568), sans-IO.

Keeps our current SDP; accepts the answer to our offer; answers offers from the
far end (re-INVITE, UPDATE), choosing the direction per RFC 3264 section 6.1 and
bumping the origin version by one whenever what we send changes (section 8).
"""

from __future__ import annotations

import dataclasses

from bridge.sip.codecs import (
    Negotiated,
    NegotiatedVideo,
    describe,
    matches,
    negotiate,
    negotiate_video,
    offer_format,
)
from bridge.sip.sdes import (
    CryptoAttribute,
    SdesError,
    SrtpMode,
    answer_crypto,
    keys_from_answer,
    parse_crypto,
)
from bridge.sip.sdp import (
    Direction,
    MediaDescription,
    PayloadFormat,
    SdpError,
    SessionDescription,
    mirrored_media,
    parse_sdp,
)
from rtp.codecs import CODECS
from rtp.peer import Peer, PeerVideo, SrtpKeys

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


class OfferAnswer:
    """Our SDP for the call and the far end's last accepted description."""

    def __init__(
        self, offer: SessionDescription, srtp: SrtpMode = SrtpMode.OFF, offered: list[CryptoAttribute] | None = None
    ) -> None:
        self.local = offer
        self.capability = offer.audio().direction
        formats = offer.audio().formats
        self.codecs = [name for name, codec in CODECS.items() if any(matches(codec, f) for f in formats)]
        self.codecs.sort(key=lambda name: next(i for i, f in enumerate(formats) if matches(CODECS[name], f)))
        self.negotiated: Negotiated | None = None
        self._video_local = next((m for m in offer.media if m.kind == "video"), None)
        self._video_capability = self._video_local.direction if self._video_local else Direction.INACTIVE
        self.video: NegotiatedVideo | None = None
        video_crypto = self._video_local.crypto if self._video_local else []
        self._video_offered = [c for c in map(parse_crypto, video_crypto) if c is not None]
        self.video_keys: SrtpKeys | None = None
        self._sent: tuple[int, bytes] | None = None  # the version and content of our last SDP
        self.srtp_mode = srtp
        self._offered = list(offered or [])
        self.keys: SrtpKeys | None = None
        self.remote: Peer | None = None

    def local_bytes(self) -> bytes:
        return self._outgoing(self.local)

    def _outgoing(self, description: SessionDescription) -> bytes:
        """RFC 3264 section 8: the origin version of the last SDP we sent if nothing changed, else one more."""
        content = dataclasses.replace(description, session_version=0).serialize()
        if self._sent is None:
            version = description.session_version
        else:
            version = self._sent[0] if content == self._sent[1] else self._sent[0] + 1
        self._sent = (version, content)
        return dataclasses.replace(description, session_version=version).serialize()

    def accept_answer(self, body: bytes) -> Peer:
        """The answer to our offer (2xx of INVITE, or an ACK after a delayed offer)."""
        description = parse_sdp(body)
        if self.srtp_mode is not SrtpMode.OFF and self.keys is None:
            self._take_keys(description)
        remote = self._take_remote(description)
        self._narrow_to_negotiated()
        return remote

    def _narrow_to_negotiated(self) -> None:
        """Later offers of ours list only the codec in use (RFC 3264 section 8.3.2)."""
        formats = self._answered_formats()
        self.local.audio().formats = formats
        video = self._video_local
        if video is not None and self.video is None:
            video.port = 0  # declined: the line stays, rejected (RFC 3264 section 8.2)
        elif video is not None and self.video is not None:
            video.formats = [self._video_format()]

    def _video_format(self) -> PayloadFormat:
        assert self.video is not None
        return PayloadFormat(self.video.payload_type, "H264", 90000, self.video.parameters)

    def answer_offer(self, body: bytes) -> bytes:
        """Answer a far-end offer; raise SdpError if we cannot (then reply 488).

        The answer has exactly the offer's m= lines (RFC 3264 section 6): its first audio
        line answered with the codec in use, every other line rejected with port 0.
        """
        offer = parse_sdp(body)
        if self.keys is not None:
            self._rekey(offer)
        self._take_remote(offer)
        self._set_local_direction(answer_direction(self.capability, offer.audio().direction))
        ours = [dataclasses.replace(self.local.audio(), formats=self._answered_formats())]
        video = self._video_answer(offer)
        if video is not None:
            ours.append(video)
        return self._outgoing(dataclasses.replace(self.local, media=mirrored_media(offer, ours)))

    def _video_answer(self, offer: SessionDescription) -> MediaDescription | None:
        """Our video line in an answer: only for a call whose video was negotiated at the start."""
        offered = next((m for m in offer.media if m.kind == "video" and m.port), None)
        if self._video_local is None or self.video is None or offered is None:
            return None
        direction = answer_direction(self._video_capability, offered.direction)
        return dataclasses.replace(self._video_local, formats=[self._video_format()], direction=direction)

    def _answered_formats(self) -> list[PayloadFormat]:
        """The codec in use under the far end's payload type, and its telephone-event if it has one."""
        chosen = self.negotiated
        assert chosen is not None
        formats = [dataclasses.replace(offer_format(chosen.codec), payload_type=chosen.payload_type)]
        if chosen.event_payload_type is not None:
            clock = chosen.codec.rtp_clock
            formats.append(PayloadFormat(chosen.event_payload_type, "telephone-event", clock, "0-15"))
        return formats

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

    def _take_remote(self, description: SessionDescription) -> Peer:
        audio = description.audio()
        # Once a codec is in use it stays (the media worker decodes it); a re-offer must keep it.
        names = [self.negotiated.codec.name] if self.negotiated is not None else self.codecs
        chosen = negotiate(names, audio)
        if chosen is None:
            raise SdpError(
                f"the far end has none of the codecs {', '.join(names)} (it has {describe(audio)}); "
                "set connection.codecs or [media] codecs to include one of its codecs"
            )
        self.negotiated = chosen
        video = self._take_video(description)
        events = chosen.event_payload_type
        self.remote = Peer(
            description.audio_address(),
            sending=audio.direction in _SENDS,
            receiving=audio.direction in _RECEIVES,
            srtp=self.keys,
            telephone_event=events is not None,
            codec=chosen.codec.name,
            payload_type=chosen.payload_type,
            event_payload_type=events if events is not None else 101,
            video=video,
        )
        return self.remote

    def _take_video(self, description: SessionDescription) -> PeerVideo | None:
        """The far end's H.264 line, if we offered video and it accepted (RFC 6184 section 8.2)."""
        if self._video_local is None or self._video_local.port == 0:
            return None
        line = next((m for m in description.media if m.kind == "video"), None)
        chosen = negotiate_video(line) if line is not None else None
        if line is None or chosen is None:
            return None
        keys = self._take_video_keys(line)
        if keys is None and self._video_offered:
            return None  # SRTP offered and not agreed: no video rather than plain video (RFC 4568 7.5)
        self.video = chosen
        address = (line.connection_address or description.connection_address, line.port)
        send = self._video_capability in _SENDS and line.direction in _RECEIVES
        return PeerVideo(address, chosen.payload_type, chosen.sprop, chosen.pli, chosen.fir, send, keys)

    def _take_video_keys(self, line: MediaDescription) -> SrtpKeys | None:
        """RFC 4568 per media line: the video's own keys, agreed like the audio's (section 6.1)."""
        if not self._video_offered:
            return None
        assert self._video_local is not None
        if self.video_keys is None:
            try:
                self.video_keys = keys_from_answer(self._video_offered, line.crypto)
            except SdesError:
                return None
            chosen = [c for c in self._video_offered if self.video_keys and c.suite == self.video_keys.suite]
            self._video_local.crypto = [c.value() for c in chosen[:1]]
            return self.video_keys
        answered = answer_crypto(line.crypto, self.video_keys)  # a re-offer (or answer) keys again
        if answered is None:
            raise SdpError("the video line drops SRTP keys for our suite")
        crypto, self.video_keys = answered
        self._video_local.crypto = [crypto.value()]
        return self.video_keys

    def _set_local_direction(self, direction: Direction) -> None:
        if self.local.audio().direction is not direction:
            self._replace_local(direction=direction)

    def _replace_local(self, **changes: object) -> None:
        """Change our audio line; the version goes up when it is next sent (:meth:`_outgoing`)."""
        media = self.local.audio()
        for name, value in changes.items():
            setattr(media, name, value)
