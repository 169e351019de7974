"""Resampling and AAC-LC encoding with PyAV, producing FLV AUDIODATA bodies.

FLV AUDIODATA (FLV spec v10, annex E.4.2): one header byte (SoundFormat 10 =
AAC, rate flag 44 kHz, 16-bit, mono) then AACPacketType (0 = AudioSpecificConfig,
1 = raw frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, cast

import av
import numpy as np
import numpy.typing as npt

from bridge.media.upsample import IntegerUpsampler
from bridge.model import OutputSpec
from rtp.g711 import encode_ulaw

AAC_FRAME_SAMPLES = 1024
FLV_AAC_MONO = 0xAE
FLV_AAC_STEREO = 0xAF  # SoundType 1
AAC_SEQUENCE_HEADER = 0
AAC_RAW = 1


class AudioEncoder(Protocol):
    """What the pipeline needs from an output codec."""

    input_rate: int
    encoded_packets: int

    @property
    def input_batch(self) -> int: ...

    @property
    def start_offset_ms(self) -> float:
        """Where the first input sample lands on the FLV timeline (after any encoder priming)."""
        ...

    def sequence_header(self) -> bytes | None: ...

    def encode(self, pcm: npt.NDArray[np.int16]) -> list[tuple[int, bytes]]: ...

    def flush(self) -> list[tuple[int, bytes]]: ...


@dataclass(frozen=True, slots=True)
class AacSettings:
    sample_rate: int = 16000
    bitrate: int = 32000
    coder: str = ""  # PyAV/FFmpeg aac_coder option: "" (FFmpeg's default, twoloop), "fast", "twoloop"
    channels: int = 1  # 2: input blocks are (samples, 2) left/right
    options: tuple[tuple[str, str], ...] = ()  # further FFmpeg encoder options (bench.coder tries them)


class AacEncoder:
    """8 kHz linear PCM in, FLV audio bodies with millisecond timestamps out.

    Output rates that are whole multiples of the input (16, 24, 32, 48 kHz) are
    upsampled in numpy (:class:`IntegerUpsampler`); others (44.1 kHz) go through
    FFmpeg's resampler.

    Frames whose size already is the codec's (1024 samples, fltp, mono) go straight to
    ``avcodec_send_frame``/``receive_packet``: one reused :class:`av.AudioFrame` whose plane
    is written through a numpy view, and PyAV's per-call send/receive generator instead of
    ``CodecContext.encode``, which first pushes every frame through a libavfilter graph to
    re-frame it (measured: 55-75 µs per frame, a fifth of a call's CPU, for no change).
    The packets are byte-identical (tests/unit/media/test_pipeline.py).
    """

    def __init__(self, settings: AacSettings, input_rate: int = 8000) -> None:
        self.settings = settings
        self.input_rate = input_rate
        self._codec = av.CodecContext.create("aac", "w")
        self._codec.sample_rate = settings.sample_rate
        self._layout = "stereo" if settings.channels == 2 else "mono"
        self._flv = FLV_AAC_STEREO if settings.channels == 2 else FLV_AAC_MONO
        self._codec.layout = self._layout
        self._codec.format = "fltp"
        self._codec.bit_rate = settings.bitrate
        options = {"aac_coder": settings.coder} if settings.coder else {}
        if options or settings.options:
            self._codec.options = {**options, **dict(settings.options)}
        self._codec.open()
        factor, remainder = divmod(settings.sample_rate, input_rate)
        whole = remainder == 0 and settings.channels == 1  # the numpy upsampler is mono
        self._upsampler = IntegerUpsampler(factor) if whole else None
        self._resampler = (
            None
            if self._upsampler is not None
            else av.AudioResampler(
                format="fltp", layout=self._layout, rate=settings.sample_rate, frame_size=AAC_FRAME_SAMPLES
            )
        )
        self._next_pts = 0
        self._first_packet_pts: int | None = None
        self.encoded_packets = 0
        self._frame = av.AudioFrame(format="fltp", layout="mono", samples=AAC_FRAME_SAMPLES)
        self._frame.sample_rate = settings.sample_rate
        self._plane = np.frombuffer(cast(bytes, self._frame.planes[0]), np.float32)[:AAC_FRAME_SAMPLES]
        self._send = getattr(self._codec, "_send_frame_and_recv", None)  # PyAV >= 12; else encode()

    @property
    def start_offset_ms(self) -> float:
        """FFmpeg's AAC encoder primes with 1024 samples: the first packet (timestamp 0) starts before them."""
        return AAC_FRAME_SAMPLES * 1000 / self.settings.sample_rate

    def sequence_header(self) -> bytes | None:
        """The AAC sequence header body carrying the AudioSpecificConfig."""
        return bytes([self._flv, AAC_SEQUENCE_HEADER]) + bytes(self._codec.extradata or b"")

    @property
    def input_batch(self) -> int:
        """Input samples that make whole AAC frames after resampling (e.g. 512 at 8->16 kHz)."""
        if self._upsampler is not None:
            return AAC_FRAME_SAMPLES // math.gcd(AAC_FRAME_SAMPLES, self._upsampler.factor)
        return AAC_FRAME_SAMPLES * self.input_rate // self.settings.sample_rate

    def encode(self, pcm: npt.NDArray[np.int16]) -> list[tuple[int, bytes]]:
        """Encode a batch of samples; returns (timestamp_ms, FLV body) per AAC frame."""
        upsampler = self._upsampler
        if upsampler is not None:
            if len(pcm) * upsampler.factor == AAC_FRAME_SAMPLES:  # one frame: upsampled into the codec's frame
                upsampler.process_into(pcm, self._plane)
                return self._encode_plane()
            return self._encode_upsampled(upsampler.process(pcm))
        assert self._resampler is not None
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout=self._layout)  # interleaved
        frame.sample_rate = self.input_rate
        output: list[tuple[int, bytes]] = []
        for resampled in self._resampler.resample(frame):
            resampled.pts = self._next_pts
            self._next_pts += resampled.samples
            for packet in self._encode_frame(resampled):
                output.append(self._to_flv(packet))
        return output

    def _encode_upsampled(self, samples: npt.NDArray[np.float32]) -> list[tuple[int, bytes]]:
        output: list[tuple[int, bytes]] = []
        frame, plane = self._frame, self._plane
        for start in range(0, len(samples) - AAC_FRAME_SAMPLES + 1, AAC_FRAME_SAMPLES):
            plane[:] = samples[start : start + AAC_FRAME_SAMPLES]
            frame.pts = self._next_pts
            self._next_pts += AAC_FRAME_SAMPLES
            output += [self._to_flv(packet) for packet in self._encode_frame(frame, direct=True)]
        return output

    def _encode_plane(self) -> list[tuple[int, bytes]]:
        """The reused frame, its plane already written, to the codec."""
        frame = self._frame
        frame.pts = self._next_pts
        self._next_pts += AAC_FRAME_SAMPLES
        return [self._to_flv(packet) for packet in self._encode_frame(frame, direct=True)]

    def _encode_frame(self, frame: av.AudioFrame | None, direct: bool = False) -> list[av.Packet[Any]]:
        """The codec itself (one place, so the stage profiler can tell it from the framing around it).

        ``direct``: the frame already has the codec's size and format; skip PyAV's re-framing.
        The reused frame may be written again at once: the AAC encoder copies its samples
        in ``avcodec_send_frame`` and the packets are received before we return.
        """
        if direct and self._send is not None:
            return list(self._send(frame))
        packets: list[av.Packet[Any]] = self._codec.encode(frame)
        return packets

    def flush(self) -> list[tuple[int, bytes]]:
        """Drain the resampler and the encoder's look-ahead (call end)."""
        output: list[tuple[int, bytes]] = []
        if self._resampler is not None:
            for resampled in self._resampler.resample(None):
                resampled.pts = self._next_pts
                self._next_pts += resampled.samples
                output += [self._to_flv(p) for p in self._encode_frame(resampled)]
        output += [self._to_flv(p) for p in self._encode_frame(None)]
        return output

    def _to_flv(self, packet: av.Packet[Any]) -> tuple[int, bytes]:
        pts = packet.pts if packet.pts is not None else 0
        if self._first_packet_pts is None:
            self._first_packet_pts = pts
        self.encoded_packets += 1
        timestamp_ms = (pts - self._first_packet_pts) * 1000 // self.settings.sample_rate
        return timestamp_ms, bytes([self._flv, AAC_RAW]) + bytes(packet)


FLV_PCMU = 0x82  # SoundFormat 8 (G.711 mu-law), rate flag 0, 16-bit, mono (as FFmpeg writes it)


class PcmuFlvEncoder:
    """G.711 mu-law passthrough: no transcoding, FLV sound format 8, 80 ms per message."""

    input_rate = 8000

    def __init__(self) -> None:
        self._samples = 0
        self.encoded_packets = 0

    @property
    def input_batch(self) -> int:
        return 640

    @property
    def start_offset_ms(self) -> float:
        return 0.0

    def sequence_header(self) -> bytes | None:
        return None

    def encode(self, pcm: npt.NDArray[np.int16]) -> list[tuple[int, bytes]]:
        timestamp_ms = self._samples * 1000 // self.input_rate
        self._samples += len(pcm)
        self.encoded_packets += 1
        return [(timestamp_ms, bytes([FLV_PCMU]) + encode_ulaw(pcm))]

    def flush(self) -> list[tuple[int, bytes]]:
        return []


# For telephone-band input (8 kHz: G.711), FFmpeg's AAC encoder is told what the audio holds: a
# low-pass at 4.4 kHz (nothing above 4 kHz comes in) and no temporal noise shaping. Chosen by
# `python -m bench.coder` (2026-12-08, G.711 speech and a tone, PESQ wide band against FFmpeg's
# decoder): 16 kHz/32 kbit/s 2.04 against 2.09-2.85 ms of CPU per audio second, PESQ 4.26/3.81
# against 4.21/3.77; 48 kHz/64 kbit/s 4.18 against 5.07-6.07 ms, 4.33/4.08 against 4.16/3.93.
# Wider inputs (G.722, ACS) keep FFmpeg's defaults: they were not measured.
TELEPHONE_BAND_OPTIONS = (("cutoff", "4400"), ("aac_tns", "0"))


def aac_settings(output: OutputSpec, input_rate: int = 8000) -> AacSettings:
    """The AAC settings for an output fed with ``input_rate`` audio."""
    options = TELEPHONE_BAND_OPTIONS if input_rate == 8000 else ()
    return AacSettings(output.sample_rate, output.bitrate, output.aac_coder, output.channels, options)


def new_encoder(output: OutputSpec, input_rate: int = 8000) -> AudioEncoder:
    """The encoder for an output fed with ``input_rate`` audio (G.711 output takes 8 kHz only)."""
    if output.codec == "pcmu":
        if input_rate != PcmuFlvEncoder.input_rate:
            raise ValueError(f"G.711 output needs 8 kHz audio, not {input_rate} Hz")
        return PcmuFlvEncoder()
    return AacEncoder(aac_settings(output, input_rate), input_rate)
