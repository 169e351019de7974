"""A call's RTP source, sans-IO, on a fake clock: pacing, hold, the RTP timeout, DTMF out
(RFC 4733) and in, RTCP receiver reports (RFC 3550 6.4.2). Headers are read here by hand from the
RFC layouts, not with the code under test."""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field

from bridge.config import RtpConfig
from bridge.media.decoders import codec_media
from bridge.media.sources import DtmfHeard, FeedSource, RtpSource
from rtp.peer import Peer
from tests.support.fake_clock import FakeClock

FAR = ("192.0.2.10", 40000)
PEER = Peer(FAR, telephone_event=True)


@dataclass
class Wire:
    """What the source asked to send, by port: the driver's job, done here by hand."""

    source: RtpSource
    sent: list[tuple[bytes, tuple[str, int]]] = field(default_factory=list)
    sent_rtcp: list[tuple[bytes, tuple[str, int]]] = field(default_factory=list)

    def collect(self) -> None:
        for out in self.source.datagrams_to_send():
            (self.sent_rtcp if out.rtcp else self.sent).append((out.data, out.address))


def _source(send: bool = True, peer: Peer = PEER) -> tuple[RtpSource, Wire, FakeClock]:
    clock = FakeClock(100.0)
    source = RtpSource(peer, codec_media("pcmu"), RtpConfig(), send, clock.now)
    return source, Wire(source), clock


def _header(packet: bytes) -> tuple[int, bool, int, int, int]:
    """RFC 3550 5.1 by hand: payload type, marker, sequence, timestamp, SSRC."""
    first, second, sequence, timestamp, ssrc = struct.unpack("!BBHII", packet[:12])
    assert first >> 6 == 2  # version 2
    return second & 0x7F, bool(second & 0x80), sequence, timestamp, ssrc


def _rtp(sequence: int, timestamp: int, payload: bytes = b"\xff" * 160, pt: int = 0, ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, sequence, timestamp, ssrc) + payload


def _run(wire: Wire, clock: FakeClock, seconds: float, step: float = 0.02) -> None:
    end = clock.now + seconds
    while clock.now < end - 1e-9:
        clock.now = round(clock.now + step, 6)
        wire.source.send_due(clock.now)
        wire.collect()


def test_silence_leaves_one_packet_per_20_ms_numbered_without_gaps() -> None:
    _, port, clock = _source()
    _run(port, clock, 1.0)
    headers = [_header(data) for data, _ in port.sent]
    assert {destination for _, destination in port.sent} == {FAR}
    assert 49 <= len(headers) <= 51
    assert all(pt == 0 for pt, *_ in headers) and headers[0][1] and not any(m for _, m, *_ in headers[1:])
    assert all(
        (b[2] - a[2]) & 0xFFFF == 1 and (b[3] - a[3]) & 0xFFFFFFFF == 160 for a, b in itertools.pairwise(headers)
    )
    assert all(data[12:] == b"\xff" * 160 for data, _ in port.sent)  # µ-law silence


def test_a_stall_is_caught_up_in_a_bounded_burst_not_a_flood() -> None:
    source, port, clock = _source()
    clock.now += 1.0  # the worker's loop stalled for a second
    source.send_due(clock.now)
    port.collect()
    assert 1 <= len(port.sent) <= 5
    first = _header(port.sent[0][0])
    _run(port, clock, 0.1)
    after = _header(port.sent[-1][0])
    assert (after[3] - first[3]) & 0xFFFFFFFF == 55 * 160  # 1.1 s after the first: the timeline kept wall time
    assert (after[2] - first[2]) & 0xFFFF == len(port.sent) - 1  # and no sequence number was skipped


def test_hold_stops_our_packets_and_resume_continues_the_timeline() -> None:
    source, port, clock = _source()
    _run(port, clock, 0.2)
    last_before = _header(port.sent[-1][0])
    assert source.update(Peer(FAR, sending=True, receiving=False), clock.now)  # sendonly: held
    count = len(port.sent)
    _run(port, clock, 1.0)
    assert len(port.sent) == count  # nothing toward a far end that does not listen
    assert not source.update(PEER, clock.now)
    _run(port, clock, 0.2)
    first_after = _header(port.sent[count][0])
    assert (first_after[3] - last_before[3]) & 0xFFFFFFFF == 51 * 160  # 1.02 s later on the RTP clock


def test_rtp_timeout_counts_only_while_the_far_end_says_it_sends() -> None:
    source, _, clock = _source(send=False)
    source.receive_datagram(_rtp(1, 0), FAR, clock.now)
    heard = source.last_heard()
    assert heard == clock.now
    clock.now += 12.0
    assert source.silent_for(heard, clock.now) == 12.0
    source.update(Peer(FAR, sending=False, receiving=True), clock.now)  # recvonly: it will send nothing
    clock.now += 60.0
    assert source.silent_for(heard, clock.now) == 0.0
    source.update(PEER, clock.now)  # it sends again: counted from the change, not from the last packet
    clock.now += 3.0
    assert source.silent_for(heard, clock.now) == 3.0


def test_dtmf_goes_out_as_rfc_4733_events_with_three_end_packets() -> None:
    source, port, clock = _source()
    _run(port, clock, 0.1)
    port.sent.clear()
    source.send_dtmf("5", 100)
    _run(port, clock, 0.5)
    events = [(data, _header(data)) for data, _ in port.sent if _header(data)[0] == 101]
    start = events[0][1][3]
    assert all(h[3] == start for _, h in events) and events[0][1][1]  # one timestamp, marker first
    decoded = [struct.unpack("!BBH", data[12:16]) for data, _ in events]
    assert {event for event, _, _ in decoded} == {5}
    ends = [d for d in decoded if d[1] & 0x80]
    assert len(ends) == 3 and len({d[2] for d in ends}) == 1 and ends[0][2] == 5 * 160  # 100 ms
    assert [d[2] for d in decoded if not d[1] & 0x80] == [160, 320, 480, 640]
    sequences = [_header(data)[2] for data, _ in port.sent]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(sequences))


def test_dtmf_received_is_noted_once_per_digit() -> None:
    source, _, clock = _source(send=False)
    for n, (flags, duration) in enumerate([(10, 160), (10, 320), (0x80 | 10, 480), (0x80 | 10, 480)]):
        source.receive_datagram(_rtp(n + 1, 8000, struct.pack("!BBH", 11, flags, duration), pt=101), FAR, clock.now)
    assert source.next_event() == DtmfHeard("#", 60) and source.next_event() is None


def test_receiver_reports_go_to_the_rtcp_port_every_five_seconds() -> None:
    source, port, clock = _source(send=False)
    for n in range(300):  # 6 s of packets, every tenth lost
        if n % 10 != 3:
            source.receive_datagram(_rtp(n, n * 160), FAR, clock.now)
        clock.now += 0.02
        source.handle_timer(clock.now)
        port.collect()
    assert len(port.sent_rtcp) == 1
    report, destination = port.sent_rtcp[0]
    assert destination == (FAR[0], FAR[1] + 1)
    first, packet_type, _length, _ours, source_ssrc = struct.unpack("!BBHII", report[:12])
    assert first & 0x1F == 1 and packet_type == 201 and source_ssrc == 0x1234  # RR, one block, about them
    fraction, lost = report[12], int.from_bytes(report[13:16], "big")
    assert lost == 25 and 20 <= fraction <= 30  # 25 of ~250 expected by the 5 s report: ~10 %


def test_packets_from_elsewhere_are_counted_not_played() -> None:
    source, _, clock = _source(send=False)
    source.receive_datagram(_rtp(1, 0), ("203.0.113.9", 40000), clock.now)
    counters = source.counters()
    assert counters["packets"] == 0 and counters["foreignPackets"] == 1 and source.last_heard() is None


def test_a_feed_source_counts_silence_from_its_last_frame_whatever_the_direction() -> None:
    feed = FeedSource(codec_media("pcmu"), RtpConfig(), stereo=False)
    feed.push(0, 0, b"\xff" * 160, 10.0)
    assert feed.last_heard() == 10.0 and feed.silent_for(10.0, 14.5) == 4.5
    assert feed.counters()["packets"] == 1 and feed.track_blocks() == {}
