"""The playout buffer: reordering, loss as silence, late/duplicate drops, resync, trimming."""

from __future__ import annotations

from rtp.jitter import JitterBuffer, timestamp_delta

FRAME = 160


def frame(n: int) -> bytes:
    return bytes([n % 250]) * FRAME


def test_timestamp_delta_wraps() -> None:
    assert timestamp_delta(5, 0xFFFFFFF0) == 21
    assert timestamp_delta(0xFFFFFFF0, 5) == -21


def test_reordered_packets_play_in_timestamp_order_after_the_delay() -> None:
    buffer = JitterBuffer(delay_samples=2 * FRAME)
    for n in (0, 2, 1, 3):
        buffer.push(1000 + n * FRAME, frame(n + 1))
    assert buffer.pull(2 * FRAME) == b"\xff" * (2 * FRAME)  # the playout delay
    assert buffer.pull(4 * FRAME) == frame(1) + frame(2) + frame(3) + frame(4)


def test_missing_packet_becomes_silence_of_the_same_length() -> None:
    buffer = JitterBuffer(delay_samples=0)
    buffer.push(0, frame(1))
    buffer.push(2 * FRAME, frame(3))
    assert buffer.pull(3 * FRAME) == frame(1) + b"\xff" * FRAME + frame(3)
    assert buffer.stats.concealed_samples == FRAME


def test_late_and_duplicate_packets_are_dropped_and_counted() -> None:
    buffer = JitterBuffer(delay_samples=0)
    buffer.push(0, frame(1))
    buffer.push(FRAME, frame(2))
    buffer.push(FRAME, frame(2))
    assert buffer.stats.duplicate == 1
    buffer.pull(2 * FRAME)
    buffer.push(0, frame(1))
    assert buffer.stats.late == 1 and buffer.depth_samples == 0


def test_timestamp_jump_resynchronises_instead_of_stalling() -> None:
    buffer = JitterBuffer(delay_samples=FRAME, resync_samples=8000)
    buffer.push(0, frame(1))
    buffer.pull(2 * FRAME)
    buffer.push(10_000_000, frame(9))  # far-end restart
    assert buffer.stats.resyncs == 1
    assert buffer.pull(2 * FRAME) == b"\xff" * FRAME + frame(9)


def test_depth_is_trimmed_so_latency_cannot_grow() -> None:
    buffer = JitterBuffer(delay_samples=0, max_delay_samples=5 * FRAME)
    for n in range(10):
        buffer.push(n * FRAME, frame(n))
    assert buffer.depth_samples == 5 * FRAME
    assert buffer.stats.trimmed_samples == 5 * FRAME
    assert buffer.pull(FRAME) == frame(5)


def test_packets_longer_than_the_pull_are_split_across_pulls() -> None:
    buffer = JitterBuffer(delay_samples=0)
    buffer.push(0, bytes(range(240)))  # a 30 ms packet
    assert buffer.pull(FRAME) == bytes(range(160))
    assert buffer.pull(FRAME) == bytes(range(160, 240)) + b"\xff" * 80
