"""The receive path on a fake clock: playout buffer, concealment, comfort noise, DTMF, RTCP.

RTP arrives as byte-exact packets through RtpReceiver; the output clock pulls 20 ms
(160 samples) per tick, as the media pipeline does.
"""

from __future__ import annotations

import struct

import numpy as np

from rtp.dtmf import DtmfDecoder, DtmfEvent
from rtp.g711 import encode_ulaw
from rtp.packet import RtpPacket
from rtp.playout import PlayoutBuffer, timestamp_delta
from rtp.receiver import RtpReceiver
from rtp.rtcp import RtcpReporter

FAR = ("192.0.2.9", 40000)
FRAME = 160


def tone(n: int, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(n * FRAME, (n + 1) * FRAME) / 8000
    return (8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def packet(
    n: int, ssrc: int = 0x1234, ts_base: int = 1000, pt: int = 0, payload: bytes | None = None, marker: bool = False
) -> bytes:
    body = encode_ulaw(tone(n)) if payload is None else payload
    return RtpPacket(pt, n & 0xFFFF, (ts_base + n * FRAME) & 0xFFFFFFFF, ssrc, body, marker).serialize()


def run(receiver: RtpReceiver, arrivals: list[tuple[float, bytes]], seconds: float) -> np.ndarray:
    """Deliver datagrams at their times and pull 20 ms per 20 ms tick; returns the output."""
    arrivals = sorted(arrivals, key=lambda a: a[0])
    out, now, index = [], 0.0, 0
    while now < seconds - 1e-9:
        while index < len(arrivals) and arrivals[index][0] <= now:
            receiver.datagram_received(arrivals[index][1], FAR, arrivals[index][0])
            index += 1
        out.append(receiver.buffer.pull(FRAME, now))
        now = round(now + 0.02, 6)
    return np.concatenate(out)


def fine_peak_hz(samples: np.ndarray) -> float:
    """The dominant frequency, zero-padded so the resolution is 0.06 Hz or finer."""
    padded = np.zeros(max(1 << 17, 1 << (2 * len(samples) - 1).bit_length()))
    padded[: len(samples)] = samples * np.hanning(len(samples))
    return float(np.argmax(np.abs(np.fft.rfft(padded))) * 8000 / len(padded))


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * 8000 / len(samples))


def test_clean_stream_plays_the_tone_after_a_short_delay() -> None:
    receiver = RtpReceiver(FAR)
    out = run(receiver, [(n * 0.02, packet(n)) for n in range(150)], 3.0)
    first_sound = int(np.argmax(np.abs(out) > 100))
    assert 320 <= first_sound <= 640  # the playout delay: 40..80 ms
    assert abs(peak_hz(out[1000:20000]) - 440) < 3
    assert receiver.buffer.stats.concealed_samples == 0 and receiver.buffer.stats.late == 0


def test_reordered_and_duplicated_packets_play_once_in_order() -> None:
    order = list(range(100))
    for i in range(0, 98, 7):
        order[i], order[i + 1] = order[i + 1], order[i]
    arrivals = [(i * 0.02, packet(n)) for i, n in enumerate(order)] + [(0.5, packet(20)), (0.9, packet(40))]
    receiver = RtpReceiver(FAR)
    run(receiver, arrivals, 1.98)  # until the last arrival: the stream has not ended yet
    stats = receiver.buffer.stats
    assert stats.duplicate + stats.late == 2 and stats.concealed_samples == 0


def test_lost_packet_is_concealed_by_a_fading_repeat_then_silence() -> None:
    receiver = RtpReceiver(FAR)
    arrivals = [(n * 0.02, packet(n)) for n in range(60) if not 20 <= n < 30]  # 200 ms lost
    out = run(receiver, arrivals, 1.18)
    stats = receiver.buffer.stats
    assert stats.concealed_samples == 3 * FRAME  # 60 ms of repeat-and-fade
    assert stats.silence_samples - 480 >= 7 * FRAME - 10  # the rest of the gap (plus the start-up delay)
    level = [float(np.abs(out[i : i + FRAME]).max()) for i in range(0, len(out) - FRAME, FRAME)]
    gap = level.index(0.0, 10)  # the first silent window after the start-up delay
    assert level[gap - 3] >= level[gap - 2] >= level[gap - 1] > 0  # fading out...
    assert level[gap - 1] < 0.5 * level[gap - 4]  # ...to well below the tone before reaching silence


def test_comfort_noise_fills_silence_without_counting_loss() -> None:
    receiver = RtpReceiver(FAR)
    cn = packet(20, pt=13, payload=bytes([40]))  # -40 dBov noise from here
    arrivals = [(n * 0.02, packet(n)) for n in range(20)] + [(0.4, cn)] + [(n * 0.02, packet(n)) for n in range(45, 60)]
    out = run(receiver, arrivals, 1.18)
    stats = receiver.buffer.stats
    assert stats.comfort_noise_samples >= 20 * FRAME and stats.concealed_samples == 0
    noise = out[30 * FRAME : 40 * FRAME].astype(float)
    assert 100 < np.sqrt(np.mean(noise**2)) < 600  # about -40 dBFS (328), not silence


def test_ssrc_change_continues_the_timeline_without_gap_or_overlap() -> None:
    receiver = RtpReceiver(FAR)
    arrivals = [(n * 0.02, packet(n)) for n in range(50)]
    arrivals += [(n * 0.02, packet(n, ssrc=0x9999, ts_base=777_000_000)) for n in range(50, 100)]
    out = run(receiver, arrivals, 1.98)
    assert receiver.counters.ssrc_changes == 1
    stats = receiver.buffer.stats
    assert stats.concealed_samples == 0 and stats.silence_samples == 480  # only the start-up delay
    assert abs(peak_hz(out[9000:16000]) - 440) < 3


def test_a_first_packet_far_ahead_of_the_rest_does_not_silence_the_call() -> None:
    """Packet 0 on time, then a 480 ms pause and a steady stream: every packet misses its play time."""
    receiver = RtpReceiver(FAR)
    arrivals = [(0.0, packet(0))] + [(0.48 + n * 0.02, packet(n)) for n in range(1, 150)]
    out = run(receiver, arrivals, 2.98)
    stats = receiver.buffer.stats
    assert stats.resyncs == 1 and 20 <= stats.late <= 30  # 0.5 s of late packets, then heard again
    assert abs(peak_hz(out[16000:23000]) - 440) < 3 and np.abs(out[16000:23000]).max() > 4000


def test_timestamp_jump_resynchronises_and_keeps_playing() -> None:
    receiver = RtpReceiver(FAR)
    arrivals = [(n * 0.02, packet(n)) for n in range(50)]
    arrivals += [(n * 0.02, packet(n, ts_base=1000 + 3_000_000, marker=n == 50)) for n in range(50, 100)]
    run(receiver, arrivals, 1.98)
    stats = receiver.buffer.stats
    assert stats.resyncs == 1 and stats.late == 0 and stats.concealed_samples == 0


def test_far_end_clock_one_percent_fast_is_absorbed_without_latency_growth_or_pitch_change() -> None:
    receiver = RtpReceiver(FAR)
    arrivals = [(n * 0.02 / 1.01, packet(n)) for n in range(3000)]  # 60 s of audio in 59.4 s
    out = run(receiver, arrivals, 59.4)
    stats = receiver.buffer.stats
    assert receiver.buffer.depth < 1200  # < 150 ms buffered at the end
    assert stats.trimmed_samples == 0 and stats.late == 0
    assert stats.stretched_samples > 0.009 * 59.4 * 8000 * 0.5  # whole pitch periods removed
    # The tone keeps its pitch: a resampling steer would have made it 444 Hz (1 % faster).
    assert abs(fine_peak_hz(out[8000:]) - 440) < 0.5
    assert abs(fine_peak_hz(out[480:24000]) - 440) < 0.5  # the first 3 s too
    assert stats.concealed_samples == 0


def test_a_clean_stream_is_never_stretched() -> None:
    receiver = RtpReceiver(FAR)
    out = run(receiver, [(n * 0.02, packet(n)) for n in range(500)], 10.0)
    assert receiver.buffer.stats.stretched_samples == 0
    assert abs(fine_peak_hz(out[480:24000]) - 440) < 0.5


def test_jitter_of_80_ms_adapts_the_delay_instead_of_dropping() -> None:
    rng = np.random.default_rng(3)
    receiver = RtpReceiver(FAR)
    arrivals = [(n * 0.02 + float(rng.uniform(0, 0.08)), packet(n)) for n in range(1500)]
    run(receiver, arrivals, 30.0)
    late_after_adapting = receiver.buffer.stats.late
    assert late_after_adapting < 60  # a few while it learns, none afterwards
    assert receiver.buffer.depth < 2000


def test_telephone_events_become_one_digit_each_and_never_audio() -> None:
    receiver = RtpReceiver(FAR)
    event = [struct.pack("!BBH", 5, 10, d) for d in (160, 320, 480)] + [struct.pack("!BBH", 5, 0x80 | 10, 640)] * 3
    arrivals = [(n * 0.02, packet(n)) for n in range(10)]
    arrivals += [(0.2 + i * 0.02, packet(10, pt=101, payload=p)) for i, p in enumerate(event)]
    arrivals += [(0.4, packet(30, pt=101, payload=struct.pack("!BBH", 11, 0x80 | 10, 800)))]
    run(receiver, arrivals, 0.8)
    assert receiver.dtmf_events == [DtmfEvent("5", 80), DtmfEvent("#", 100)]
    assert receiver.counters.telephone_events == 7 and receiver.buffer.stats.accepted == 10  # only the audio


def test_dtmf_end_lost_is_reported_when_the_next_event_starts() -> None:
    decoder = DtmfDecoder()
    assert decoder.receive(1, 100, struct.pack("!BBH", 1, 10, 400)) == []
    assert decoder.receive(1, 900, struct.pack("!BBH", 2, 0x80 | 10, 400)) == [DtmfEvent("1", 50), DtmfEvent("2", 50)]
    assert decoder.receive(1, 900, b"\x02") == [] and decoder.malformed == 1


def test_receiver_report_carries_loss_jitter_and_lsr() -> None:
    receiver = RtpReceiver(FAR)
    arrivals = [(n * 0.02, packet(n)) for n in range(250) if n % 10 != 0]  # 10 % loss
    run(receiver, arrivals, 5.0)
    reporter = RtcpReporter(our_ssrc=0xAAAA, start=0.0)
    sender_report = struct.pack("!BBHIII", 0x80, 200, 6, 0x1234, 0x00012345, 0x67890000) + bytes(16)
    reporter.receive(sender_report, 4.5)
    report = reporter.poll(5.0, receiver.ssrc, receiver.stats)
    assert report is not None and report[1] == 201 and len(report) == 32
    ssrc, lost_word, highest, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", report, 8)
    assert ssrc == 0x1234 and highest == 249 and jitter == int(receiver.stats.jitter)
    assert 20 <= lost_word >> 24 <= 30  # fraction lost ~ 10 % of 256
    assert (lost_word & 0xFFFFFF) == receiver.stats.lost
    assert lsr == 0x23456789 and dlsr == int(0.5 * 65536)
    assert reporter.poll(6.0, receiver.ssrc, receiver.stats) is None  # every 5 s at most


def test_timestamp_delta_wraps() -> None:
    assert timestamp_delta(5, 0xFFFFFFF0) == 21 and timestamp_delta(0xFFFFFFF0, 5) == -21


def test_bursts_beyond_the_maximum_delay_are_trimmed_from_the_oldest_end() -> None:
    buffer = PlayoutBuffer(initial_delay=320, max_delay=1600)
    for n in range(40):  # 800 ms arriving at once
        buffer.push(7, n * FRAME, tone(n), 0.0)
    buffer.pull(FRAME, 0.02)
    assert buffer.depth <= 1600 and buffer.stats.trimmed_samples > 0
