"""FLV tag bodies for RTMP (sans-IO): audio, AVC video, onMetaData (FLV spec v10, annex E).

An RTMP audio message (type 8) carries an AUDIODATA body, a video message (type 9) a
VIDEODATA body: for AVC, FrameType|CodecID (0x17 key frame, 0x27 inter frame), then
AVCPacketType (0 = AVCDecoderConfigurationRecord, 1 = NAL units) and a 24-bit signed
composition time offset in milliseconds (E.4.3.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.model import OutputSpec, VideoSpec
from bridge.rtmp.amf0 import AmfValue

AUDIO, VIDEO = 8, 9
AVC_KEY, AVC_INTER = 0x17, 0x27
AVC_SEQUENCE_HEADER, AVC_NALU = 0, 1
CODEC_ID_AVC = 7.0
SOUND_AAC, SOUND_PCMU = 10.0, 8.0


@dataclass(frozen=True, slots=True)
class FlvTag:
    """One audio or video message: type (8 or 9), timestamp in ms, body; video key frames flagged."""

    kind: int
    timestamp: int
    body: bytes
    keyframe: bool = False


def avc_sequence_header(configuration: bytes) -> bytes:
    return bytes([AVC_KEY, AVC_SEQUENCE_HEADER, 0, 0, 0]) + configuration


def avc_frame(avcc: bytes, keyframe: bool, composition_ms: int = 0) -> bytes:
    """A video body of AVCC NAL units; ``composition_ms`` = presentation minus decoding time."""
    offset = (composition_ms & 0xFFFFFF).to_bytes(3, "big")
    return bytes([AVC_KEY if keyframe else AVC_INTER, AVC_NALU]) + offset + avcc


def metadata(audio: OutputSpec, video: VideoSpec | None) -> dict[str, AmfValue]:
    """onMetaData (E.5): codec ids, rates and sizes so players and ingests know the tracks."""
    values: dict[str, AmfValue] = {
        "audiocodecid": SOUND_PCMU if audio.codec == "pcmu" else SOUND_AAC,
        "audiosamplerate": 8000.0 if audio.codec == "pcmu" else float(audio.sample_rate),
        "audiosamplesize": 16.0,
        "stereo": False,
        "audiodatarate": 64.0 if audio.codec == "pcmu" else audio.bitrate / 1000,
    }
    if video is not None and video.enabled:
        values.update(
            {
                "videocodecid": CODEC_ID_AVC,
                "width": float(video.width),
                "height": float(video.height),
                "framerate": float(video.fps),
            }
        )
    values["encoder"] = "sip-rtmp-bridge"
    return values
