"""RTP/RTCP packets, G.711, receiver statistics and source filtering."""

from __future__ import annotations

import audioop
import struct

import numpy as np
import pytest

from rtp.g711 import decode_ulaw, encode_ulaw
from rtp.packet import (
    PacketError,
    ReceiverReport,
    ReportBlock,
    is_rtcp,
    parse_rtp,
    rtcp_packet_types,
)
from rtp.ports import PortAllocator
from rtp.receiver import RtpReceiver
from rtp.sender import SilenceSender
from rtp.stats import ReceptionStats

# RFC 3550 header: V=2, P=0, X=0, CC=0, M=1, PT=0, seq=0x1234, ts=0xdeadbeef, ssrc=0x01020304
VECTOR = bytes.fromhex("8080 1234 deadbeef 01020304") + b"\xff" * 160


def test_parse_header_fields_from_bytes() -> None:
    packet = parse_rtp(VECTOR)
    assert (packet.payload_type, packet.marker, packet.sequence_number) == (0, True, 0x1234)
    assert (packet.timestamp, packet.ssrc, len(packet.payload)) == (0xDEADBEEF, 0x01020304, 160)
    assert packet.serialize() == VECTOR


def test_csrc_extension_and_padding_are_skipped() -> None:
    header = bytes.fromhex("b100 0001 00000010 0000abcd") + bytes.fromhex("00000001")  # P, X, CC=1
    extension = bytes.fromhex("bede 0001 11223344")
    data = header + extension + b"\x01\x02\x03" + b"\x00\x00\x03"
    packet = parse_rtp(data)
    assert packet.csrc == [1] and packet.payload == b"\x01\x02\x03"


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x00",
        bytes.fromhex("4000 0001 00000000 00000000"),
        bytes.fromhex("8f00 0001 00000000 00000000"),
        bytes.fromhex("9000 0001 00000000 00000000 bede"),
        bytes.fromhex("a000 0001 00000000 00000000 ff"),
    ],
)
def test_malformed_packets_raise_packet_error(data: bytes) -> None:
    with pytest.raises(PacketError):
        parse_rtp(data)


def test_rtcp_demultiplexing_and_receiver_report_layout() -> None:
    report = ReceiverReport(0xAABBCCDD, [ReportBlock(0x01020304, 25, 3, 70000, 12)]).serialize()
    assert is_rtcp(report) and not is_rtcp(VECTOR)
    assert len(report) == 32 and struct.unpack_from("!BBH", report) == (0x81, 201, 7)
    assert rtcp_packet_types(report) == [201]


def test_ulaw_matches_the_reference_codec() -> None:
    codes = bytes(range(256))
    assert decode_ulaw(codes).tobytes() == audioop.ulaw2lin(codes, 2)
    samples = np.linspace(-32768, 32767, 5000).astype(np.int16)
    assert encode_ulaw(samples) == audioop.lin2ulaw(samples.tobytes(), 2)


def test_stats_count_loss_and_jitter_per_rfc3550() -> None:
    stats = ReceptionStats()
    for _i, seq in enumerate([100, 101, 103, 104]):  # 102 lost
        stats.update(seq, seq * 160, arrival_seconds=(seq - 100) * 0.02)
    assert stats.expected == 5 and stats.received == 4 and stats.lost == 1
    assert stats.jitter == pytest.approx(0.0)
    stats.update(105, 105 * 160, arrival_seconds=5 * 0.02 + 0.010)  # 10 ms late
    assert stats.jitter == pytest.approx(80 / 16)


def test_stats_handle_sequence_wrap() -> None:
    stats = ReceptionStats()
    for n, seq in enumerate([65534, 65535, 0, 1]):
        stats.update(seq, n * 160, n * 0.02)
    assert stats.expected == 4 and stats.lost == 0 and stats.extended_max == 65536 + 1


def test_receiver_accepts_only_the_answered_address_and_pcmu() -> None:
    receiver = RtpReceiver(("192.0.2.9", 40000))
    receiver.datagram_received(VECTOR, ("192.0.2.66", 40000), 0.0)
    receiver.datagram_received(VECTOR.replace(b"\x80\x80", b"\x80\x88", 1), ("192.0.2.9", 40000), 0.0)  # PCMA
    receiver.datagram_received(b"junk", ("192.0.2.9", 40000), 0.0)
    receiver.datagram_received(VECTOR, ("192.0.2.9", 40000), 0.0)
    counters = receiver.counters
    assert (counters.foreign_source, counters.other_payload, counters.malformed, counters.packets) == (1, 1, 1, 1)
    assert receiver.last_packet_at == 0.0


def test_receiver_relatches_once_when_configured() -> None:
    receiver = RtpReceiver(("10.0.0.9", 40000), latch=True)
    receiver.datagram_received(VECTOR, ("203.0.113.5", 61000), 0.0)
    receiver.datagram_received(VECTOR, ("203.0.113.6", 61000), 0.0)
    assert receiver.remote == ("203.0.113.5", 61000)
    assert receiver.counters.packets == 1 and receiver.counters.foreign_source == 1


def test_silence_sender_paces_20ms_and_skips_after_stall() -> None:
    sender = SilenceSender(ssrc=7, first_sequence=65535, first_timestamp=0, start=0.0)
    first = sender.poll(0.0)
    assert len(first) == 1 and parse_rtp(first[0]).marker
    assert sender.get_timer() == pytest.approx(0.02)
    burst = sender.poll(1.0)  # 50 frames due after a 1 s stall: at most 5 sent
    assert len(burst) == 5
    packets = [parse_rtp(d) for d in burst]
    assert packets[0].sequence_number == 0 and not packets[0].marker
    assert all(p.payload == b"\xff" * 160 for p in packets)
    assert sender.get_timer() > 1.0


def test_port_allocator_hands_out_even_ports_round_robin() -> None:
    ports = PortAllocator(20001, 20008)
    assert ports.candidates() == [20002, 20004, 20006]
    ports.take(20002)
    assert ports.candidates() == [20004, 20006]
    ports.release(20002)
    assert ports.candidates()[0] == 20004


def test_duplicates_do_not_hide_losses_and_loss_survives_an_ssrc_change() -> None:
    stats = ReceptionStats()
    for seq in [1, 2, 2, 2, 5, 6]:  # 3 and 4 lost, 2 duplicated twice
        stats.update(seq, seq * 160, seq * 0.02)
    assert stats.duplicates == 2 and stats.lost == 2
    stats.restart()
    for seq in [900, 902]:
        stats.update(seq, seq * 160, seq * 0.02)
    assert stats.lost == 1 and stats.lost_total == 3


def test_dtmf_events_follow_rfc4733_and_share_the_stream() -> None:
    sender = SilenceSender(ssrc=7, first_sequence=100, first_timestamp=8000, start=0.0)
    sender.send_dtmf("5", duration_ms=60, gap_ms=40)
    packets = [parse_rtp(d) for d in sender.poll(0.001)]  # frame 0
    for n in range(1, 6):
        packets += [parse_rtp(d) for d in sender.poll(n * 0.02 + 0.001)]
    kinds = [(p.payload_type, p.sequence_number, p.timestamp, p.marker) for p in packets]
    assert [k[1] for k in kinds] == list(range(100, 100 + len(kinds)))  # one sequence space, no gaps
    events = [p for p in packets if p.payload_type == 101]
    assert [e.payload for e in events] == [
        bytes([5, 10, 0, 160]),
        bytes([5, 10, 1, 64]),  # event 5, volume 10, duration 160, 320
        bytes([5, 0x80 | 10, 1, 224]),
        bytes([5, 0x80 | 10, 1, 224]),
        bytes([5, 0x80 | 10, 1, 224]),
    ]
    assert {e.timestamp for e in events} == {8000} and events[0].marker and not events[1].marker
    assert packets[-1].payload_type == 0 and packets[-1].timestamp == 8000 + 5 * 160  # silence resumes
    assert sender.dtmf_sent == 1
