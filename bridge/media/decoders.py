"""Decoders and silence for the negotiated audio codec, in the media worker (PyAV for G.722 and Opus).

What the receiver needs per codec: a function from an RTP payload to 16-bit mono samples
at the playout rate (None for PCMU, which the playout stores as it came), and one 20 ms
frame of silence for the keep-alive stream of ``sendrecv`` calls. G.711 uses lookup tables
(rtp/g711.py); G.722 (16 kHz) and Opus (48 kHz, RFC 7587, decoded to mono) use FFmpeg's
decoders through PyAV, one decoder per call, since both keep state between packets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from rtp.codecs import CODECS, FEED_CODECS, AudioCodec
from rtp.g711 import PCMA_SILENCE, PCMU_SILENCE, decode_alaw

Samples = npt.NDArray[np.int16]
Decode = Callable[[bytes], Samples]
_FFMPEG_DECODERS = {"g722": "g722", "opus": "libopus"}
_FFMPEG_ENCODERS = {"g722": "g722", "opus": "libopus"}


@dataclass(frozen=True, slots=True)
class CodecMedia:
    """What a call's media needs to know about its codec."""

    codec: AudioCodec
    decode: Decode | None  # None: PCMU, stored as µ-law by the playout
    silence: bytes  # one 20 ms frame
    ticks_per_frame: int  # RTP timestamp units per 20 ms


def codec_media(name: str) -> CodecMedia:
    """The decoder and silence of codec ``name`` (a key of rtp.codecs.CODECS or FEED_CODECS)."""
    if name in FEED_CODECS:  # an ingest call's 16-bit PCM, as the WebSocket carried it
        codec = FEED_CODECS[name]
        return CodecMedia(codec, _s16le, bytes(2 * codec.ticks_per_frame), codec.ticks_per_frame)
    codec = CODECS[name]
    ticks = codec.ticks_per_frame
    if name == "pcmu":
        return CodecMedia(codec, None, bytes([PCMU_SILENCE]) * ticks, ticks)
    if name == "pcma":
        return CodecMedia(codec, decode_alaw, bytes([PCMA_SILENCE]) * ticks, ticks)
    return CodecMedia(codec, FfmpegDecoder(name, codec.audio_rate).decode, encoded_silence(name), ticks)


def _s16le(payload: bytes) -> Samples:
    """16-bit little-endian PCM (an odd trailing byte is dropped)."""
    samples: Samples = np.frombuffer(payload, "<i2", len(payload) // 2)
    return samples


class FfmpegDecoder:
    """One call's G.722 or Opus decoder; bad payloads raise ValueError (the receiver conceals them)."""

    def __init__(self, name: str, rate: int) -> None:
        context: Any = av.CodecContext.create(_FFMPEG_DECODERS[name], "r")  # an AudioCodecContext
        context.sample_rate = rate
        context.layout = "mono"
        self._context = context

    def decode(self, payload: bytes) -> Samples:
        try:
            frames = self._context.decode(av.Packet(payload))
        except av.FFmpegError as exc:
            raise ValueError(str(exc)) from None
        if not frames:
            return np.zeros(0, np.int16)
        arrays = [_mono_s16(frame) for frame in frames]
        return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _mono_s16(frame: av.AudioFrame) -> Samples:
    data = frame.to_ndarray().reshape(-1, frame.samples)  # channels x samples (we ask for mono)
    if frame.format.name in ("s16", "s16p"):
        samples: Samples = data[0] if data.shape[0] == 1 else data.mean(axis=0).astype(np.int16)
        return samples
    mono = data.mean(axis=0)  # float formats
    converted: Samples = (np.clip(mono, -1.0, 1.0) * 32767).astype(np.int16)
    return converted


@cache
def encoded_silence(name: str) -> bytes:
    """20 ms of digital silence encoded once per worker with FFmpeg's encoder of ``name``."""
    codec = CODECS[name]
    context: Any = av.CodecContext.create(_FFMPEG_ENCODERS[name], "w")
    context.sample_rate, context.layout, context.format = codec.audio_rate, "mono", "s16"
    if name == "opus":
        context.bit_rate = 16000
    context.open()
    samples = codec.audio_rate // 50
    frame = av.AudioFrame.from_ndarray(np.zeros((1, samples), np.int16), format="s16", layout="mono")
    frame.sample_rate, frame.pts = codec.audio_rate, 0
    packets = [bytes(packet) for packet in context.encode(frame)] + [bytes(p) for p in context.encode(None)]
    return packets[0]
