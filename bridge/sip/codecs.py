"""The audio codecs we can offer, by the names operators use in ``[media] codecs`` (sans-IO).

Each name maps to the RTP payload format we put in an offer (RFC 3551 static payload types for
G.711 and G.722, a dynamic one for Opus, RFC 7587) and to what the far end's answer must carry
for us to use it. Matching is by encoding name and RTP clock rate (RFC 3264 section 6.1), not by
payload type number, which is only a label in dynamic ranges.

Clock-rate quirks kept here, once: G.722 is 16 kHz audio with an 8000 Hz RTP clock
(RFC 3551 section 4.5.2), so each RTP tick is two samples; Opus always uses a 48000 Hz RTP
clock and ``/2`` channels in SDP (RFC 7587 section 4.1), whatever it actually carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.sip.sdp import MediaDescription, PayloadFormat


@dataclass(frozen=True, slots=True)
class AudioCodec:
    """An audio codec as offered: its SDP format and the audio it decodes to."""

    name: str  # the configuration name: pcmu, pcma, g722, opus
    offer: PayloadFormat
    audio_rate: int  # samples per second of the decoded audio
    samples_per_tick: int = 1  # decoded samples per RTP timestamp unit (2 for G.722)

    @property
    def rtp_clock(self) -> int:
        return self.offer.clock_rate

    def matches(self, candidate: PayloadFormat) -> bool:
        """Whether an SDP format is this codec (RFC 3264 6.1: encoding name and clock rate)."""
        return candidate.encoding.lower() == self.offer.encoding.lower() and candidate.clock_rate == self.rtp_clock


CODECS: dict[str, AudioCodec] = {
    "pcmu": AudioCodec("pcmu", PayloadFormat(0, "PCMU", 8000), 8000),
    "pcma": AudioCodec("pcma", PayloadFormat(8, "PCMA", 8000), 8000),
    "g722": AudioCodec("g722", PayloadFormat(9, "G722", 8000), 16000, samples_per_tick=2),
    "opus": AudioCodec("opus", PayloadFormat(111, "opus", 48000, "minptime=20;useinbandfec=1", channels=2), 48000),
}
AUDIO_CODEC_NAMES = tuple(CODECS)
VIDEO_CODEC_NAMES = ("h264",)
EVENT_PAYLOAD_TYPES = {8000: 101, 16000: 102, 48000: 110}  # RFC 4733 telephone-event per RTP clock


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
    formats = [codec.offer for codec in codecs]
    if dtmf:
        clocks = dict.fromkeys(codec.rtp_clock for codec in codecs)
        formats += [PayloadFormat(EVENT_PAYLOAD_TYPES[clock], "telephone-event", clock, "0-15") for clock in clocks]
    return formats


def negotiate(names: list[str], media: MediaDescription) -> Negotiated | None:
    """The first format of the far end's media that is one of ours (its order wins, RFC 3264 6.1)."""
    offered = [CODECS[name] for name in names if name in CODECS]
    for candidate in media.formats:
        codec = next((c for c in offered if c.matches(candidate)), None)
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


def check_codec_names(names: list[str]) -> list[str]:
    """Validate a codec list (``[media] codecs``, ``connection.codecs``): known names, one audio codec at least.

    Raises ValueError with what to change. Order is kept (it is the preference order of the
    offer); repeated names are dropped.
    """
    cleaned = list(dict.fromkeys(name.strip().lower() for name in names))
    known = AUDIO_CODEC_NAMES + VIDEO_CODEC_NAMES
    unknown = [name for name in cleaned if name not in known]
    if unknown:
        raise ValueError(f"unknown codec {unknown[0]!r}: use names from {', '.join(known)}")
    if not any(name in AUDIO_CODEC_NAMES for name in cleaned):
        raise ValueError(f"list at least one audio codec from {', '.join(AUDIO_CODEC_NAMES)}")
    return cleaned


# -- video (RFC 6184) ---------------------------------------------------------------------

H264_PROFILES = ("42e01f", "42801f", "4d001f", "640028")  # Constrained Baseline, Baseline, Main, High 4.0
VIDEO_FEEDBACK = ("rtcp-fb:* nack pli", "rtcp-fb:* ccm fir")  # RFC 4585 section 4.2, RFC 5104 section 7.1
_RTCP_FB = re.compile(r"^rtcp-fb:(?P<pt>\*|\d+) (?P<kind>.+?)\s*$")
_SPROP = re.compile(r"(?:^|;)\s*sprop-parameter-sets=(?P<value>[^;\s]+)")


VIDEO_PAYLOAD_TYPES = tuple(range(96, 96 + len(H264_PROFILES) + 1))  # what video_offer() numbers


def video_offer(port: int, first_payload_type: int = 96) -> MediaDescription:
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
