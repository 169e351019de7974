"""The live video track: nothing before a key frame, AVC headers where parameter sets change, order."""

from __future__ import annotations

import struct

from bridge.media.live_video import LiveVideoTrack
from bridge.media.slate import SlateGop
from bridge.rtmp.flv import VIDEO
from rtp.h264 import AccessUnit

SPS = bytes([0x67, 0x42, 0xE0, 0x1F, 0xDA, 0x02, 0x80])
SPS_720P = bytes([0x67, 0x4D, 0x00, 0x1F, 0x9A, 0x66, 0x02])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
IDR = bytes([0x65, 0x88, 0x84, 0x00])
SLICE = bytes([0x41, 0x9A, 0x02])


def key(sps: bytes = SPS) -> AccessUnit:
    return AccessUnit(0, (sps, PPS, IDR), True)


def test_inter_frames_before_the_first_key_frame_are_not_sent() -> None:
    track = LiveVideoTrack()
    track.add(AccessUnit(0, (SLICE,), False), 0)
    assert track.due(1000) == [] and track.keyframe_wanted and track.sequence_header == b""


def test_key_frame_gets_a_sequence_header_and_avcc_bodies_per_flv_annex_e() -> None:
    track = LiveVideoTrack()
    track.add(key(), 100)
    track.add(AccessUnit(3600, (SLICE,), False), 140)
    track.add(AccessUnit(7200, (SLICE,), False), 180)
    tags = track.due(150)
    assert [(t.kind, t.timestamp, t.keyframe) for t in tags] == [
        (VIDEO, 100, True),
        (VIDEO, 100, True),
        (VIDEO, 140, False),
    ]
    header, frame, inter = (t.body for t in tags)
    # 0x17 = key frame | AVC, AVCPacketType 0, composition 0, then the AVCDecoderConfigurationRecord:
    # version 1, profile 0x42, compatibility 0xE0, level 0x1F, 0xFF (4-byte lengths), 0xE1 (one SPS).
    assert header[:11] == bytes([0x17, 0, 0, 0, 0, 1, 0x42, 0xE0, 0x1F, 0xFF, 0xE1])
    assert header[11:13] == struct.pack("!H", len(SPS)) and header[13 : 13 + len(SPS)] == SPS
    assert frame == bytes([0x17, 1, 0, 0, 0]) + struct.pack("!I", len(IDR)) + IDR  # SPS/PPS only in the header
    assert inter == bytes([0x27, 1, 0, 0, 0]) + struct.pack("!I", len(SLICE)) + SLICE
    assert [t.timestamp for t in track.due(10_000)] == [180] and not track.keyframe_wanted


def test_a_resolution_change_sends_a_new_header_before_its_key_frame_only_once() -> None:
    track = LiveVideoTrack()
    track.add(key(), 0)
    track.add(key(), 2000)  # same parameter sets: no new header
    track.add(key(SPS_720P), 4000)
    tags = track.due(5000)
    headers = [t for t in tags if t.body[1] == 0]
    assert [h.timestamp for h in headers] == [0, 4000] and headers[1].body[6] == 0x4D  # Main profile now
    assert track.sequence_header == headers[1].body


def test_timestamps_never_go_backwards() -> None:
    track = LiveVideoTrack()
    track.add(key(), 500)
    track.add(AccessUnit(3600, (SLICE,), False), 480)  # mapped earlier after an SR correction
    assert [t.timestamp for t in track.due(1000)] == [500, 500, 500]


def test_a_short_sps_from_the_network_does_not_raise() -> None:
    track = LiveVideoTrack()
    track.add(AccessUnit(0, (b"\x67\x42", PPS, IDR), True), 0)
    tags = track.due(10)
    assert [t.body[1] for t in tags] == [1] and track.sequence_header == b""


SLATE = SlateGop(b"\x17\x00\x00\x00\x00slate-header", (b"\x17\x01\x00\x00\x00k", b"\x27\x01\x00\x00\x00p"), fps=5)


def test_a_stall_plays_the_slate_until_the_far_ends_next_key_frame() -> None:
    track = LiveVideoTrack(SLATE, stall_ms=3000)
    track.add(key(), 0)
    track.add(AccessUnit(3600, (SLICE,), False), 40)
    assert [t.timestamp for t in track.due(3039)] == [0, 0, 40]  # header, IDR, inter: 2999 ms since
    stalled = track.due(3500)  # 3460 ms without a frame: the slate from now, its header first
    assert [(t.timestamp, t.body) for t in stalled] == [(3500, SLATE.sequence_header), (3500, SLATE.frames[0])]
    assert track.sequence_header == SLATE.sequence_header
    assert [t.timestamp for t in track.due(3700)] == [3700]  # 5 fps
    assert track.keyframe_wanted and track.stalls == 1
    track.add(AccessUnit(7200, (SLICE,), False), 3750)  # the camera is back, but no IDR yet: dropped
    assert [t.body for t in track.due(3900)] == [SLATE.frames[0]]  # the slate, its two-frame GOP again
    track.add(key(), 3950)
    back = track.due(4000)
    assert [t.timestamp for t in back] == [3950, 3950] and back[0].body[1] == 0  # the far end's header again
    assert track.sequence_header == back[0].body and not track.keyframe_wanted
    assert [t.timestamp for t in track.due(6949)] == []  # 2999 ms: not yet
    assert [t.timestamp for t in track.due(6950)] == [6950, 6950] and track.stalls == 2


def test_without_a_fallback_a_stall_shows_nothing_new() -> None:
    track = LiveVideoTrack()
    track.add(key(), 0)
    track.due(10)
    assert track.due(60_000) == [] and track.stalls == 0


def test_video_that_starts_late_shows_the_slate_until_its_first_key_frame() -> None:
    track = LiveVideoTrack(SLATE, stall_ms=3000)
    assert track.due(2999) == []  # nothing yet: the stream is audio only
    assert [t.timestamp for t in track.due(3000)] == [3000, 3000] and track.sequence_header == SLATE.sequence_header
    track.add(key(), 4100)
    tags = track.due(4200)
    assert [t.body[1] for t in tags if t.timestamp == 4100] == [0, 1] and track.sequence_header == tags[-2].body
