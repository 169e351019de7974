"""Sending our picture over RTP: FU-A bytes, the sender's pacing and GOP restarts, PLI/FIR parsing.

Byte vectors are written out from RFC 6184 5.8 (FU indicator and header) and RFC 4585 6.1 /
RFC 5104 4.3.1 (PLI, FIR); the clock is a number passed in.
"""

from __future__ import annotations

import struct

from bridge.media.video_sender import VideoSender
from rtp.h264 import packetize
from rtp.keyframes import keyframe_requests_in
from rtp.packet import parse_rtp

SPS, PPS = bytes.fromhex("6742c01e"), bytes.fromhex("68ce3c80")
IDR = bytes([0x65]) + bytes(range(256)) * 10  # 2561 bytes: three FU-A fragments at MTU 1200
P = bytes.fromhex("419a0203")


def test_small_nal_units_go_alone_and_a_large_one_in_fu_a_fragments() -> None:
    payloads = packetize([SPS, PPS, IDR], mtu=1200)
    assert payloads[:2] == [SPS, PPS]
    fragments = payloads[2:]
    # FU indicator: F=0, NRI=3 (from 0x65), type 28 → 0x7c; FU header: S/E bits | type 5
    assert [f[:2].hex() for f in fragments] == ["7c85", "7c05", "7c45"]
    assert all(len(f) <= 1200 for f in fragments)
    assert bytes([0x65]) + b"".join(f[2:] for f in fragments) == IDR


def _sender(start: float = 10.0) -> VideoSender:
    return VideoSender([[SPS, PPS, IDR], [P], [P], [P]], 5, 0xABCD, 96, start, 65534, 0xFFFFFF00)


def test_frames_are_paced_at_the_frame_rate_with_one_timestamp_and_a_marker_each() -> None:
    sender = _sender()
    first = [parse_rtp(d) for d in sender.poll(10.0)]
    assert [p.sequence_number for p in first] == [65534, 65535, 0, 1, 2]  # wraps (RFC 3550 5.1)
    assert [p.marker for p in first] == [False, False, False, False, True]
    assert {p.timestamp for p in first} == {0xFFFFFF00} and {p.payload_type for p in first} == {96}
    assert sender.poll(10.19) == []
    second = [parse_rtp(d) for d in sender.poll(10.2)]
    assert len(second) == 1 and second[0].timestamp == (0xFFFFFF00 + 18000) & 0xFFFFFFFF
    assert abs(sender.next_deadline() - 10.4) < 1e-9


def test_a_late_tick_sends_at_most_two_frames_and_nothing_goes_out_while_held() -> None:
    sender = _sender()
    sender.poll(10.0)
    late = [parse_rtp(d) for d in sender.poll(11.0)]  # frames 1-5 due: 1-3 skipped, 4 and 5 sent
    assert sorted({(p.timestamp - 0xFFFFFF00) & 0xFFFFFFFF for p in late}) == [4 * 18000, 5 * 18000]
    assert sender.frames_sent == 3
    assert sender.poll(12.0, sending=False) == []
    assert sender.frames_sent == 3 and abs(sender.next_deadline() - 12.2) < 1e-9


def test_a_key_frame_request_restarts_the_gop_unless_the_idr_just_went_out() -> None:
    sender = _sender()
    sender.poll(10.0)  # frame 0: IDR
    sender.keyframe_requested()  # ignored: two IDRs in a row are not allowed (H.264 7.4.3)
    assert parse_rtp(sender.poll(10.2)[0]).payload == P
    sender.keyframe_requested()
    assert [parse_rtp(d).payload for d in sender.poll(10.4)][:2] == [SPS, PPS]
    assert sender.keyframes_sent == 2 and sender.requests == 2


def test_pli_and_fir_for_our_ssrc_are_found_in_compound_rtcp() -> None:
    receiver_report = bytes.fromhex("80c90001") + struct.pack("!I", 0x1111)  # RR, no blocks
    pli_ours = bytes.fromhex("81ce0002") + struct.pack("!II", 0x1111, 0xABCD)
    pli_other = bytes.fromhex("81ce0002") + struct.pack("!II", 0x1111, 0x9999)
    fir_ours = bytes.fromhex("84ce0004") + struct.pack("!IIIB3x", 0x1111, 0, 0xABCD, 3)
    assert keyframe_requests_in(receiver_report + pli_ours, 0xABCD) == 1
    assert keyframe_requests_in(pli_other, 0xABCD) == 0
    assert keyframe_requests_in(receiver_report + fir_ours + pli_ours, 0xABCD) == 2
    assert keyframe_requests_in(pli_ours[:10], 0xABCD) == 0  # truncated: nothing, no exception
    assert keyframe_requests_in(bytes.fromhex("81ce00ff") + pli_ours[4:], 0xABCD) == 0  # length past the end
