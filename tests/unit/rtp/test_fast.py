"""The compiled fast path (rtp._fast) against the Python reference: same samples, same counters.

Hypothesis builds packet sequences with what networks and far ends do (loss, reordering,
duplicates, sequence and timestamp wrap, timestamp jumps, SSRC changes, DTMF and comfort noise,
another source, late packets) and feeds them to two receivers: one through the Python path only,
one through ``rtp._fast`` first, with what it leaves to the Python path after it. Every pull must
give the same samples, and every counter must agree.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import astuple
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bridge.media.upsample as upsample
import rtp.g711
import rtp.playout
from bridge.media.rtp_endpoint import SO_TIMESTAMPNS
from bridge.media.upsample import IntegerUpsampler
from rtp import _fast
from rtp.playout import PlayoutBuffer
from rtp.receiver import RtpReceiver
from tests.support.fuzz_budget import EXAMPLES

FAR = ("127.0.0.1", 40000)
OTHER = ("127.0.0.1", 40002)
Packet = tuple[bytes, tuple[str, int], float]


def rtp_packet(sequence: int, timestamp: int, ssrc: int, payload: bytes, pt: int = 0, marker: bool = False) -> bytes:
    """RFC 3550 5.1, built by hand."""
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)


def new_receiver() -> RtpReceiver:
    return RtpReceiver(FAR, playout=PlayoutBuffer(encoding="pcmu"))


def pull(receiver: RtpReceiver, n: int, now: float, compiled: bool) -> np.ndarray[Any, Any]:
    """A pull through the compiled take (rtp._fast.take_ulaw) or through the Python path only."""
    saved = rtp.playout.FAST
    rtp.playout.FAST = _fast if compiled else None
    try:
        return receiver.buffer.pull(n, now)
    finally:
        rtp.playout.FAST = saved


def state(receiver: RtpReceiver) -> tuple[Any, ...]:
    stats, buffer = receiver.stats, receiver.buffer
    return (
        astuple(receiver.counters),
        astuple(buffer.stats),
        (stats.received, stats.duplicates, stats.max_sequence, stats.cycles, stats.lost_total, stats.jitter),
        (receiver.ssrc, receiver.last_packet_at, [(e.digit, e.duration_ms) for e in receiver.dtmf_events]),
        (buffer.depth, buffer.target_delay, buffer.added_delay),
    )


@st.composite
def traffic(draw: st.DrawFn) -> list[list[Packet]]:
    """Batches of packets (one batch per 64 ms tick) as a far end and a network make them."""
    sequence = draw(st.sampled_from([0, 65500, draw(st.integers(0, 65535))]))
    timestamp = draw(st.sampled_from([0, 0xFFFFF000, draw(st.integers(0, 0xFFFFFFFF))]))
    ssrc = draw(st.integers(0, 0xFFFFFFFF))
    arrival, packets = 100.0, []
    for _ in range(draw(st.integers(1, 120))):
        event = draw(
            st.sampled_from(
                ["plain"] * 12 + ["loss", "swap", "dup", "jump", "ssrc", "dtmf", "cn", "other", "late", "marker", "seq"]
            )
        )
        payload = bytes(draw(st.integers(0, 255)) for _ in range(4)) * 40
        sequence, timestamp, arrival = sequence + 1, timestamp + 160, arrival + 0.02 + draw(st.floats(-0.004, 0.004))
        if event == "loss":
            continue
        if event == "jump":
            timestamp += draw(st.sampled_from([8000 * 3, -8000 * 2, 400]))
        if event == "seq":
            sequence += draw(st.sampled_from([5000, 200, -3]))
        if event == "ssrc":
            ssrc = (ssrc + 1) & 0xFFFFFFFF
        pt = {"dtmf": 101, "cn": 13}.get(event, 0)
        body = bytes([10]) if event == "cn" else bytes([1, 0x0A, 0, 160]) if event == "dtmf" else payload
        data = rtp_packet(sequence, timestamp, ssrc, body, pt, event == "marker") + body
        source = OTHER if event == "other" else FAR
        packets.append((data, source, arrival + (0.3 if event == "late" else 0.0)))
        if event == "dup":
            packets.append((data, source, arrival + 0.001))
        if event == "swap" and len(packets) >= 2:
            packets[-1], packets[-2] = packets[-2], packets[-1]
    return [packets[i : i + 3] for i in range(0, len(packets), 3)]


def feed(batches: list[list[Packet]], compiled: bool) -> list[tuple[Any, ...]]:
    """Every batch then a pull of 512 samples, as the call's tick does; what each step left behind."""
    receiver, seen = new_receiver(), []
    for batch in batches:
        now = max(arrival for _data, _source, arrival in batch) + 0.001
        leftovers = _fast.receive_packets(receiver, batch, now) if compiled else batch
        for data, source, arrival in leftovers:
            receiver.datagram_received(data, source, arrival)
        seen.append(state(receiver))
        seen.append(tuple(pull(receiver, 512, now, compiled).tolist()))
    return seen


@settings(max_examples=EXAMPLES, deadline=None)
@given(traffic())
def test_the_compiled_path_gives_the_reference_samples_and_counters(batches: list[list[Packet]]) -> None:
    assert feed(batches, compiled=True) == feed(batches, compiled=False)


def test_a_steady_stream_is_taken_by_the_compiled_path() -> None:
    """After the first packet anchors the stream, the plain packets of a batch stay in C."""
    receiver = new_receiver()
    packets = [(rtp_packet(n, 160 * n, 7, b"\x55" * 160) + b"\x55" * 160, FAR, 1.0 + 0.02 * n) for n in range(10)]
    assert _fast.receive_packets(receiver, packets[:1], 1.0) == packets[:1]  # not anchored yet: Python
    receiver.datagram_received(*packets[0])
    assert _fast.receive_packets(receiver, packets[1:], 1.2) == []
    assert receiver.counters.packets == 10 and receiver.stats.received == 10 and receiver.buffer.stats.accepted == 10


def test_the_first_packet_the_compiled_path_cannot_take_leaves_the_rest_in_order() -> None:
    receiver = new_receiver()
    packets = [(rtp_packet(n, 160 * n, 7, b"\x55" * 160) + b"\x55" * 160, FAR, 1.0 + 0.02 * n) for n in range(6)]
    receiver.datagram_received(*packets[0])
    dtmf = (rtp_packet(3, 480, 7, b"\x01\x0a\x00\xa0", pt=101) + b"\x01\x0a\x00\xa0", FAR, 1.07)
    batch = [*packets[1:3], dtmf, *packets[3:]]
    assert _fast.receive_packets(receiver, batch, 1.2) == batch[2:]


def test_the_socket_path_reads_every_datagram_with_its_kernel_time() -> None:
    """recvmmsg in batches of 32: 45 datagrams (within a second of the first: no resync), the far
    end's in C, a stranger's left with its source."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(FAR)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))
    try:
        receiver = new_receiver()
        first = rtp_packet(0, 0, 9, b"\x11" * 160) + b"\x11" * 160
        receiver.datagram_received(first, FAR, 0.0)
        for n in range(1, 46):
            far.sendto(rtp_packet(n, 160 * n, 9, b"\x22" * 160) + b"\x22" * 160, sock.getsockname())
        stranger.sendto(b"not rtp", sock.getsockname())
        time.sleep(0.05)
        now = time.monotonic()
        leftovers, error = _fast.receive_socket(sock.fileno(), receiver, time.time() - now, now)
        assert error == 0
        assert [(data, source) for data, source, _arrival in leftovers] == [(b"not rtp", stranger.getsockname())]
        assert now - 1.0 < leftovers[0][2] <= now
        assert receiver.counters.packets == 46 and receiver.stats.max_sequence == 45
        assert _fast.receive_socket(sock.fileno(), receiver, time.time() - now, now) == ([], 0)
    finally:
        for s in (sock, far, stranger):
            s.close()


def test_take_ulaw_refuses_a_pull_with_a_hole_and_consumes_nothing() -> None:
    codes, valid, out = bytearray(range(256)) * 128, bytearray(b"\x01" * 32768), np.empty(160, np.int16)
    valid[100] = 0
    assert _fast.take_ulaw(codes, valid, 0, out) is False and valid.count(0) == 1
    assert _fast.take_ulaw(codes, valid, 200, out) is True
    assert out.tolist() == rtp.g711.ULAW_TO_LINEAR[np.arange(200, 360) % 256].tolist()
    assert valid.count(0) == 161


@pytest.mark.parametrize("factor", [2, 3, 4, 6])
def test_the_compiled_upsampler_gives_numpys_output_across_blocks(factor: int, monkeypatch: pytest.MonkeyPatch) -> None:
    signal = (np.sin(np.arange(512 * 5) * 0.3) * 20000).astype(np.int16)
    compiled, reference = IntegerUpsampler(factor), IntegerUpsampler(factor)
    ours = [compiled.process(signal[i : i + 512]) for i in range(0, len(signal), 512)]
    monkeypatch.setattr(upsample, "FAST", None)
    theirs = [reference.process(signal[i : i + 512]) for i in range(0, len(signal), 512)]
    np.testing.assert_allclose(np.concatenate(ours), np.concatenate(theirs), atol=2e-6)


def test_a_steady_pull_is_taken_in_c_and_a_pull_with_a_hole_is_not() -> None:
    compiled, reference = new_receiver(), new_receiver()
    for n in range(8):
        data = rtp_packet(n, 160 * n, 7, bytes([n + 1]) * 160) + bytes([n + 1]) * 160
        for receiver in (compiled, reference):
            receiver.datagram_received(data, FAR, 1.0 + 0.02 * n)
    for receiver in (compiled, reference):  # the playout delay before the first packet: a gap, concealed
        pull(receiver, 480, 1.1, compiled=False)
    out = np.empty(480, np.int16)
    assert _fast.pull_ulaw(compiled.buffer, out, 1.2) is True
    assert out.tolist() == pull(reference, 480, 1.2, compiled=False).tolist()
    assert state(compiled) == state(reference)
    assert _fast.pull_ulaw(compiled.buffer, np.empty(900, np.int16), 1.3) is False  # beyond what arrived
    assert state(compiled) == state(reference)
