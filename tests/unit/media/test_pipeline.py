"""The output timeline advances with wall time whatever RTP does (fake clock)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from bridge.media.encoder import AacEncoder, AacSettings
from bridge.media.pipeline import MediaPipeline, PlayoutClock, pull_unit
from bridge.media.upsample import IntegerUpsampler
from rtp.g711 import encode_ulaw
from rtp.packet import RtpPacket
from rtp.receiver import RtpReceiver

FAR = ("192.0.2.9", 40000)


def tone_packets(seconds: float, skip: tuple[float, float]) -> list[tuple[float, bytes]]:
    """(arrival time, datagram) for a 440 Hz tone at 20 ms, none inside ``skip``."""
    out = []
    for n in range(int(seconds / 0.02)):
        t = n * 0.02
        if skip[0] <= t < skip[1]:
            continue
        samples = (8000 * np.sin(2 * np.pi * 440 * (np.arange(160) + n * 160) / 8000)).astype(np.int16)
        packet = RtpPacket(0, n & 0xFFFF, n * 160, 0x1234, encode_ulaw(samples))
        out.append((t, packet.serialize()))
    return out


def test_timeline_is_continuous_through_an_rtp_gap_and_irregular_ticks() -> None:
    receiver = RtpReceiver(FAR)
    encoder = AacEncoder(AacSettings(sample_rate=16000, bitrate=32000))
    pipeline = MediaPipeline(receiver.buffer, [encoder], PlayoutClock(start=0.0))
    packets = tone_packets(4.0, skip=(1.0, 1.5))
    outputs: list[tuple[int, bytes]] = []
    rng = np.random.default_rng(1)
    now = 0.0
    while now < 4.0:
        while packets and packets[0][0] <= now:
            receiver.datagram_received(packets.pop(0)[1], FAR, now)
        outputs += pipeline.tick(now)[0]
        now += float(rng.uniform(0.005, 0.12))  # late and early wake-ups
    stamps = [ts for ts, _ in outputs]
    steps = set(np.diff(stamps).tolist())
    assert steps <= {64}, steps  # 1024 samples at 16 kHz, no jumps, no repeats
    produced_seconds = len(outputs) * 1024 / 16000
    assert 4.0 - 0.4 <= produced_seconds <= 4.0  # minus encoder and batch delay
    assert all(body[:2] == b"\xae\x01" for _, body in outputs)


def test_output_decodes_to_the_tone() -> None:
    receiver = RtpReceiver(FAR)
    encoder = AacEncoder(AacSettings())
    pipeline = MediaPipeline(receiver.buffer, [encoder], PlayoutClock(start=0.0))
    outputs: list[tuple[int, bytes]] = []
    for t, datagram in tone_packets(2.0, skip=(9, 9)):
        receiver.datagram_received(datagram, FAR, t)
        outputs += pipeline.tick(t)[0]
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = encoder.sequence_header()[2:]
    decoded = []
    for _, body in outputs:
        for frame in decoder.decode(av.Packet(body[2:])):
            decoded.append(frame.to_ndarray()[0])
    audio = np.concatenate(decoded)[4000:]
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440) < 5


def test_waking_exactly_at_each_deadline_always_makes_progress() -> None:
    receiver = RtpReceiver(FAR)
    pipeline = MediaPipeline(receiver.buffer, [AacEncoder(AacSettings())], PlayoutClock(start=0.0))
    now, produced = 0.0, 0
    for _ in range(200):
        produced += len(pipeline.tick(now)[0])
        deadline = pipeline.next_deadline()
        assert deadline > now
        now = deadline
    assert now >= 200 * 0.06 and produced > 150


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_every_output_rate_encodes_the_tone(rate: int) -> None:
    receiver = RtpReceiver(FAR)
    encoder = AacEncoder(AacSettings(sample_rate=rate, bitrate=48000))
    pipeline = MediaPipeline(receiver.buffer, [encoder], PlayoutClock(start=0.0))
    outputs: list[tuple[int, bytes]] = []
    for t, datagram in tone_packets(2.0, skip=(9, 9)):
        receiver.datagram_received(datagram, FAR, t)
        outputs += pipeline.tick(t)[0]
    outputs += pipeline.flush()[0]
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = encoder.sequence_header()[2:]  # type: ignore[index]
    audio = np.concatenate([f.to_ndarray()[0] for _, body in outputs for f in decoder.decode(av.Packet(body[2:]))])
    audio = audio[rate // 4 :]
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    assert abs(np.argmax(spectrum) * rate / len(audio) - 440) < 5
    assert abs(len(outputs) * 1024 / rate - 2.0) < 0.2  # the flush leaves no audio behind


@pytest.mark.parametrize("rate", [16000, 48000])
def test_the_direct_encode_path_gives_the_same_bytes_as_pyavs_encode(rate: int) -> None:
    """Our reused frame + send/receive must not change a single bit of what PyAV's encode() makes."""
    seconds = np.arange(8000 * 5) / 8000
    pcm = (6000 * np.sin(2 * np.pi * 440 * seconds) * (1 + 0.5 * np.sin(2 * np.pi * 3 * seconds))).astype(np.int16)
    ours = AacEncoder(AacSettings(sample_rate=rate, bitrate=48000, coder="fast"))
    batch = ours.input_batch
    bodies = [
        body for start in range(0, len(pcm) - batch + 1, batch) for _, body in ours.encode(pcm[start : start + batch])
    ]
    reference = av.CodecContext.create("aac", "w")
    reference.sample_rate, reference.layout, reference.format, reference.bit_rate = rate, "mono", "fltp", 48000
    reference.options = {"aac_coder": "fast"}
    reference.open()
    upsampler = IntegerUpsampler(rate // 8000)
    samples = np.concatenate([upsampler.process(pcm[s : s + batch]) for s in range(0, len(pcm) - batch + 1, batch)])
    expected = []
    for index in range(len(samples) // 1024):
        frame = av.AudioFrame.from_ndarray(
            samples[index * 1024 : (index + 1) * 1024].reshape(1, -1), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = rate, index * 1024
        expected += [bytes(packet) for packet in reference.encode(frame)]
    assert len(bodies) == len(expected) > 50
    assert [body[2:] for body in bodies] == expected


def test_the_clock_steps_one_encoder_batch_when_the_encoders_share_one() -> None:
    assert pull_unit([512]) == 0.064  # AAC at 16 kHz: one pull per frame, nothing left waiting
    assert pull_unit([512, 512]) == 0.064 and pull_unit([640]) == 0.08  # G.711 passthrough: 80 ms
    assert pull_unit([512, 185]) == 0.020  # 44.1 kHz beside 16 kHz: 20 ms frames
    receiver = RtpReceiver(FAR)
    encoder = AacEncoder(AacSettings(sample_rate=16000, bitrate=32000))
    pipeline = MediaPipeline(receiver.buffer, [encoder], PlayoutClock(0.0, pull_unit([encoder.input_batch])))
    pulls: list[int] = []
    original = receiver.buffer.pull
    receiver.buffer.pull = lambda n, now: pulls.append(n) or original(n, now)  # type: ignore[method-assign]
    now = 0.0
    for _ in range(20):
        now = pipeline.next_deadline()
        pipeline.tick(now)
    assert set(pulls) == {512} and len(pulls) == 20  # each tick exactly one batch, due exactly then
