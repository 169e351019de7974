"""The audio codecs we offer and how SDP names them (sans-IO).

The codec table itself is :mod:`rtp.codecs` (media facts, below SIP). Here each entry becomes
the RTP payload format we put in an offer (RFC 3551 static payload types for G.711 and G.722,
a dynamic one for Opus, RFC 7587), and an answer is matched against it by encoding name and
RTP clock rate (RFC 3264 section 6.1), not by payload type number, which is only a label in
dynamic ranges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.sip.sdp import MediaDescription, PayloadFormat
from rtp.codecs import (
    CODECS,
    EVENT_PAYLOAD_TYPES,
    FIRST_VIDEO_PAYLOAD_TYPE,
    H264_PROFILES,
    AudioCodec,
)


def offer_format(codec: AudioCodec) -> PayloadFormat:
    """The SDP format we offer for a codec (its a=rtpmap and a=fmtp)."""
    return PayloadFormat(codec.payload_type, codec.encoding, codec.rtp_clock, codec.parameters, codec.channels)


def matches(codec: AudioCodec, candidate: PayloadFormat) -> bool:
    """Whether an SDP format is this codec (RFC 3264 6.1: encoding name and clock rate)."""
    return candidate.encoding.lower() == codec.encoding.lower() and candidate.clock_rate == codec.rtp_clock


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What the far end chose from our offer: the codec, its payload type, and DTMF events (if any)."""

    codec: AudioCodec
    payload_type: int
    event_payload_type: int | None


def offered_formats(names: list[str], dtmf: bool = True) -> list[PayloadFormat]:
    """The m=audio formats for these codec names, in preference order, plus telephone-event
    for each distinct RTP clock (RFC 4733 section 2.1: events use the audio's clock)."""
    codecs = [CODECS[name] for name in names if name in CODECS]
    formats = [offer_format(codec) for codec in codecs]
    if dtmf:
        clocks = dict.fromkeys(codec.rtp_clock for codec in codecs)
        formats += [PayloadFormat(EVENT_PAYLOAD_TYPES[clock], "telephone-event", clock, "0-15") for clock in clocks]
    return formats


def negotiate(names: list[str], media: MediaDescription) -> Negotiated | None:
    """The first format of the far end's media that is one of ours (its order wins, RFC 3264 6.1)."""
    offered = [CODECS[name] for name in names if name in CODECS]
    for candidate in media.formats:
        codec = next((c for c in offered if matches(c, candidate)), None)
        if codec is not None:
            return Negotiated(codec, candidate.payload_type, _event_payload_type(media, codec.rtp_clock))
    return None


def _event_payload_type(media: MediaDescription, clock: int) -> int | None:
    for candidate in media.formats:
        if candidate.encoding.lower() == "telephone-event" and candidate.clock_rate == clock:
            return candidate.payload_type
    return None


def describe(media: MediaDescription) -> str:
    """The far end's audio formats in words, for a 488 reason: 'PCMA/8000, telephone-event/8000'."""
    named = [f"{f.encoding}/{f.clock_rate}" if f.encoding else f"payload type {f.payload_type}" for f in media.formats]
    return ", ".join(named) or "no formats"


# -- video (RFC 6184) ---------------------------------------------------------------------

VIDEO_FEEDBACK = ("rtcp-fb:* nack pli", "rtcp-fb:* ccm fir")  # RFC 4585 section 4.2, RFC 5104 section 7.1
_RTCP_FB = re.compile(r"^rtcp-fb:(?P<pt>\*|\d+) (?P<kind>.+?)\s*$")
_SPROP = re.compile(r"(?:^|;)\s*sprop-parameter-sets=(?P<value>[^;\s]+)")


def video_offer(port: int, first_payload_type: int = FIRST_VIDEO_PAYLOAD_TYPE) -> MediaDescription:
    """Our m=video line: H.264 packetization-mode 1 for each common profile, then mode 0
    (RFC 6184 section 8.1), with PLI and FIR feedback; the caller sets direction and crypto."""
    formats = [
        PayloadFormat(first_payload_type + i, "H264", 90000, f"profile-level-id={profile};packetization-mode=1")
        for i, profile in enumerate(H264_PROFILES)
    ]
    mode_0 = "profile-level-id=42e01f;packetization-mode=0"
    formats.append(PayloadFormat(first_payload_type + len(formats), "H264", 90000, mode_0))
    return MediaDescription(port, formats, kind="video", attributes=list(VIDEO_FEEDBACK))


@dataclass(frozen=True, slots=True)
class NegotiatedVideo:
    """The far end's H.264 choice: payload type, its fmtp parameters, and the feedback allowed for it."""

    payload_type: int
    parameters: str
    pli: bool
    fir: bool

    @property
    def sprop(self) -> str:
        """RFC 6184 section 8.1 sprop-parameter-sets (base64 SPS/PPS), or empty."""
        match = _SPROP.search(self.parameters)
        return match["value"] if match else ""


def negotiate_video(media: MediaDescription) -> NegotiatedVideo | None:
    """The first H.264 format of an active m=video line, and which RTCP feedback applies to it."""
    chosen = next((f for f in media.formats if f.encoding.upper() == "H264" and f.clock_rate == 90000), None)
    if chosen is None or media.port == 0 or media.kind != "video":
        return None
    kinds = set()
    for value in media.attributes:
        feedback = _RTCP_FB.match(value)
        if feedback is not None and feedback["pt"] in ("*", str(chosen.payload_type)):
            kinds.add(feedback["kind"])
    return NegotiatedVideo(chosen.payload_type, chosen.parameters, "nack pli" in kinds, "ccm fir" in kinds)
