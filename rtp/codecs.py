"""The audio codecs a call's media can carry, as RTP and playout see them (sans-IO).

One table for both sides: ``bridge.sip.codecs`` turns an entry into the SDP format we offer
and matches answers against it (RFC 3264 section 6.1: encoding name and RTP clock rate); the
media worker decodes and paces by it. Names are those operators use in ``[media] codecs``.

Clock-rate quirks kept here, once: G.722 is 16 kHz audio with an 8000 Hz RTP clock
(RFC 3551 section 4.5.2), so each RTP tick is two samples; Opus always uses a 48000 Hz RTP
clock and two channels in SDP (RFC 7587 section 4.1), whatever it actually carries.

The two ``s16le-*`` entries are not RTP codecs and are never offered: they name the 16-bit
little-endian PCM an ingest WebSocket carries (ACS), played out as it came.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AudioCodec:
    """An audio codec: how RTP names and clocks it, and the audio it decodes to."""

    name: str  # the configuration name: pcmu, pcma, g722, opus
    encoding: str  # the RTP encoding name (RFC 3551 section 6 / RFC 7587)
    rtp_clock: int
    payload_type: int  # the static payload type (RFC 3551) or the dynamic one we offer
    audio_rate: int  # samples per second of the decoded audio
    samples_per_tick: int = 1  # decoded samples per RTP timestamp unit (2 for G.722)
    channels: int = 1  # as named in SDP
    parameters: str = ""  # our a=fmtp for it

    @property
    def ticks_per_frame(self) -> int:
        """RTP timestamp units per 20 ms packet."""
        return self.rtp_clock // 50


CODECS: dict[str, AudioCodec] = {
    "pcmu": AudioCodec("pcmu", "PCMU", 8000, 0, 8000),
    "pcma": AudioCodec("pcma", "PCMA", 8000, 8, 8000),
    "g722": AudioCodec("g722", "G722", 8000, 9, 16000, samples_per_tick=2),
    "opus": AudioCodec("opus", "opus", 48000, 111, 48000, channels=2, parameters="minptime=20;useinbandfec=1"),
}
FEED_CODECS: dict[str, AudioCodec] = {
    "s16le-16000": AudioCodec("s16le-16000", "S16LE", 16000, 96, 16000),
    "s16le-24000": AudioCodec("s16le-24000", "S16LE", 24000, 96, 24000),
}
AUDIO_CODEC_NAMES = tuple(CODECS)
VIDEO_CODEC_NAMES = ("h264",)
EVENT_PAYLOAD_TYPES = {8000: 101, 16000: 102, 48000: 110}  # RFC 4733 telephone-event per RTP clock

# Video (RFC 6184): H.264 packetization-mode 1 for each common profile, then mode 0.
H264_PROFILES = ("42e01f", "42801f", "4d001f", "640028")  # Constrained Baseline, Baseline, Main, High 4.0
FIRST_VIDEO_PAYLOAD_TYPE = 96
VIDEO_PAYLOAD_TYPES = tuple(range(FIRST_VIDEO_PAYLOAD_TYPE, FIRST_VIDEO_PAYLOAD_TYPE + len(H264_PROFILES) + 1))


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


def feed_codec_name(encoding: str, rate: int) -> str:
    """The codec name of an ingest stream's audio format (``pcmu``, or ``s16le-<rate>``)."""
    return "pcmu" if encoding == "pcmu" else f"s16le-{rate}"
