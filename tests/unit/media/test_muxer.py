"""Audio and slate video interleaved on one timeline, in order, restarting on key frames (fake clock)."""

from __future__ import annotations

from bridge.media.muxer import FlvMuxer
from bridge.media.slate import SlateGop
from bridge.media.video_track import SlateTrack
from bridge.rtmp.flv import AUDIO, VIDEO

GOP = SlateGop(b"seq", (b"key", b"p1", b"p2", b"p3"), fps=25)


def test_frames_follow_the_audio_offset_and_repeat_the_gop() -> None:
    track = SlateTrack(GOP, offset_ms=64.0)
    frames = track.due(204)
    assert [f.timestamp for f in frames] == [64, 104, 144, 184]
    assert [f.body for f in frames] == [b"key", b"p1", b"p2", b"p3"] and frames[0].keyframe
    assert [f.body for f in track.due(304)] == [b"key", b"p1", b"p2"]  # the GOP again, time going on


def test_a_key_frame_request_restarts_the_gop_at_the_next_frame() -> None:
    track = SlateTrack(GOP)
    track.due(40)  # key, p1
    track.request_keyframe()
    following = track.due(160)
    assert [f.body for f in following] == [b"key", b"p1", b"p2"] and following[0].timestamp == 80


def test_video_waits_for_audio_and_every_batch_is_ordered_and_later_than_the_last() -> None:
    muxer = FlvMuxer(b"asc", SlateTrack(GOP, offset_ms=64.0))
    assert [(t.kind, t.body) for t in muxer.sequence_headers()] == [(AUDIO, b"asc"), (VIDEO, b"seq")]
    seen: list[int] = []
    for tick in range(20):
        audio = [(ts, b"aac") for ts in range(tick * 128, tick * 128 + 128, 64)]
        tags = muxer.mux(audio)
        stamps = [t.timestamp for t in tags]
        assert stamps == sorted(stamps)
        assert not seen or stamps[0] >= seen[-1]
        assert max(t.timestamp for t in tags if t.kind == VIDEO) <= audio[-1][0]
        seen += stamps
    video = [t for t in muxer.mux([(2560, b"aac")]) if t.kind == VIDEO]
    assert video and all(t.timestamp <= 2560 for t in video)
    assert muxer.mux([]) == []
