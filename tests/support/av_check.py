"""What a viewer of an audio+video stream sees and hears: every frame decoded, flashes and beeps found.

The stream is demuxed and decoded by FFmpeg (through PyAV). Each video frame's mean luma
finds the white flashes, the audio's 1 kHz envelope finds the beeps; a flash and a beep
that the far end made at the same instant should reach the viewer at the same instant, so
``offsets`` is audio onset minus picture onset for every pair (positive: sound late).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import av
import numpy as np
import numpy.typing as npt


@dataclass
class Frame:
    pts: float
    luma: float
    width: int
    height: int
    keyframe: bool
    nals: tuple[bytes, ...]  # the access unit's NAL units as carried (AVCC, 4-byte lengths)


@dataclass
class PulledAv:
    frames: list[Frame] = field(default_factory=list)
    audio_start: float | None = None
    audio_rate: int = 0
    audio: list[npt.NDArray[np.float32]] = field(default_factory=list)
    decode_errors: int = 0

    def flashes(self) -> list[float]:
        """Presentation times of the frames where the picture turns white."""
        onsets, previous = [], 0.0
        for frame in self.frames:
            if frame.luma > 128 >= previous:
                onsets.append(frame.pts)
            previous = frame.luma
        return onsets

    def beeps(self) -> list[float]:
        """Presentation times where the audio turns from quiet to the beep (2 ms resolution)."""
        if self.audio_start is None or not self.audio:
            return []
        samples = np.concatenate(self.audio)
        block = self.audio_rate // 500
        envelope = np.abs(samples[: len(samples) // block * block]).reshape(-1, block).max(axis=1)
        loud = envelope > 0.3 * float(envelope.max())
        starts = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
        onsets, last = [], -1.0
        for index in starts:
            at = self.audio_start + index * block / self.audio_rate
            if at - last > 0.5:
                onsets.append(at)
            last = at
        return onsets

    def offsets(self) -> list[tuple[float, float]]:
        """(flash time, beep time - flash time) for each flash with a beep within 0.5 s."""
        beeps = self.beeps()
        pairs = []
        for flash in self.flashes():
            nearest = min(beeps, key=lambda beep: abs(beep - flash), default=None)
            if nearest is not None and abs(nearest - flash) < 0.5:
                pairs.append((flash, nearest - flash))
        return pairs


def avcc_nals(data: bytes) -> tuple[bytes, ...]:
    """NAL units of an AVCC access unit (ISO/IEC 14496-15 5.3.4.2: 4-byte big-endian lengths)."""
    nals, offset = [], 0
    while offset + 4 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        nals.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return tuple(nals)


def pull_av(url: str, seconds: float, open_timeout: float = 15.0) -> PulledAv:
    """Read ``seconds`` (wall time) of a stream, decoding every video frame and all the audio."""
    container = av.open(url, options={"rw_timeout": str(int(open_timeout * 1e6))}, timeout=open_timeout)
    pulled = PulledAv()
    try:
        video, audio = container.streams.video[0], container.streams.audio[0]
        pulled.audio_rate = audio.codec_context.sample_rate
        started = time.monotonic()
        for packet in container.demux(video, audio):
            if packet.pts is None or packet.time_base is None:
                continue
            pts = float(packet.pts * packet.time_base)
            if packet.stream.type == "video":
                _video(pulled, packet, pts)
            else:
                pulled.audio_start = pts if pulled.audio_start is None else pulled.audio_start
                pulled.audio += [f.to_ndarray().astype(np.float32).mean(axis=0) for f in packet.decode()]
            if time.monotonic() - started > seconds:
                break
    finally:
        container.close()
    return pulled


def _video(pulled: PulledAv, packet: av.Packet, pts: float) -> None:
    try:
        decoded = packet.decode()
    except av.FFmpegError:
        pulled.decode_errors += 1
        return
    for picture in decoded:
        luma = picture.to_ndarray(format="gray")
        pulled.frames.append(
            Frame(
                float(picture.pts * picture.time_base) if picture.pts is not None and picture.time_base else pts,
                float(luma.mean()),
                picture.width,
                picture.height,
                bool(packet.is_keyframe),
                avcc_nals(bytes(packet)),
            )
        )


@dataclass
class ReceivedPicture:
    arrived: float  # the far end's media time when the frame's last packet came
    width: int
    height: int
    keyframe: bool


def decode_rtp_h264(packets: list[tuple[float, int, int, bool, int, bytes]]) -> list[ReceivedPicture]:
    """What a far end sees of RTP H.264: reassembled here (RFC 6184 single NAL, STAP-A, FU-A) and
    decoded by FFmpeg. ``packets``: (arrival, payload type, timestamp, marker, SSRC, payload)."""
    decoder = av.CodecContext.create("h264", "r")
    pictures: list[ReceivedPicture] = []
    unit = bytearray()
    for arrived, _, _, marker, _, payload in packets:
        unit += _annexb(payload)
        if not marker:
            continue
        keyframe = b"\x00\x00\x00\x01\x65" in unit or b"\x00\x00\x00\x01\x25" in unit
        for picture in decoder.decode(av.Packet(bytes(unit))):
            pictures.append(ReceivedPicture(arrived, picture.width, picture.height, keyframe))
        unit = bytearray()
    return pictures


def _annexb(payload: bytes) -> bytes:
    kind = payload[0] & 0x1F
    if kind == 24:  # STAP-A: 16-bit sizes
        out, offset = b"", 1
        while offset + 2 <= len(payload):
            size = int.from_bytes(payload[offset : offset + 2], "big")
            out += b"\x00\x00\x00\x01" + payload[offset + 2 : offset + 2 + size]
            offset += 2 + size
        return out
    if kind == 28:  # FU-A: the start fragment carries the reconstructed NAL header
        header = bytes([(payload[0] & 0xE0) | (payload[1] & 0x1F)])
        return (b"\x00\x00\x00\x01" + header if payload[1] & 0x80 else b"") + payload[2:]
    return b"\x00\x00\x00\x01" + payload
