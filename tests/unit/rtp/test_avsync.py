"""A/V sync on a fake clock: tracks starting 2 s apart with unrelated timestamps, late sender
reports, network delays that differ per track, and a far-end clock 50 ppm fast for 30 minutes."""

from __future__ import annotations

import random

import pytest

from rtp.avsync import NTP_UNIX_OFFSET, AvSync

PPM = 50e-6  # how much faster than ours the far end's clock runs (the 30-minute test tries both signs)
AUDIO_START, VIDEO_START = 1000.0, 1002.0  # far-end seconds: video starts 2 s after audio
A0, V0 = 3_000_000_000, 123_456  # unrelated RTP timestamp bases (audio wraps after ~20 minutes)


def far_to_local(far: float, ppm: float = PPM) -> float:
    return (far - AUDIO_START) / (1 + ppm)


def audio_ts(far: float) -> int:
    return (A0 + round((far - AUDIO_START) * 8000)) % (1 << 32)


def video_ts(far: float) -> int:
    return (V0 + round((far - VIDEO_START) * 90000)) % (1 << 32)


def simulate(seconds: float, first_report: float, ppm: float = PPM) -> list[tuple[float, float, float]]:
    """Feed both tracks; at each checkpoint, for one instant: (far time, video minus audio on our
    clock, audio's mapped time minus when it truly arrives without queueing)."""
    rng = random.Random(7)
    sync = AvSync({"audio": 8000, "video": 90000})
    events: list[tuple[float, str, float]] = []
    events += [(AUDIO_START + n * 0.02, "audio", 0.050) for n in range(int(seconds / 0.02))]
    events += [(VIDEO_START + n * 0.04, "video", 0.065) for n in range(int((seconds - 2) / 0.04))]
    reports = [AUDIO_START + first_report + 5 * n for n in range(int(seconds / 5))]
    events += [(t, "sr-audio", 0.0) for t in reports] + [(t + 1.3, "sr-video", 0.0) for t in reports]
    offsets = []
    checkpoint = AUDIO_START + 2.5
    for far, kind, delay in sorted(events):
        if kind.startswith("sr-"):
            track = kind[3:]
            stamp = audio_ts(far) if track == "audio" else video_ts(far)
            sync.sender_report(track, far + NTP_UNIX_OFFSET, stamp)
            continue
        stamp = audio_ts(far) if kind == "audio" else video_ts(far)
        sync.packet(kind, stamp, far_to_local(far, ppm) + delay + rng.uniform(0, 0.020))
        if far >= checkpoint:
            instant = checkpoint - 0.5
            audio, video = sync.local_time("audio", audio_ts(instant)), sync.local_time("video", video_ts(instant))
            assert audio is not None and video is not None
            offsets.append((instant - AUDIO_START, video - audio, audio - (far_to_local(instant, ppm) + 0.050)))
            checkpoint += 1.0
    return offsets


@pytest.mark.parametrize("ppm", [PPM, -PPM])
def test_tracks_stay_within_40_ms_for_30_minutes_at_50_ppm(ppm: float) -> None:
    offsets = simulate(1800.0, first_report=3.0, ppm=ppm)
    worst = max(abs(offset) for _, offset, _ in offsets)
    after_reports = max(abs(offset) for at, offset, _ in offsets if at > 5)
    follows = max(abs(error) for _, _, error in offsets)  # our clock, not the far end's (90 ms apart at 30 min)
    print(
        f"\n{len(offsets)} checkpoints over 30 min: worst A/V offset {worst * 1000:.1f} ms "
        f"({after_reports * 1000:.1f} ms once reports came), audio vs our clock within {follows * 1000:.1f} ms"
    )
    assert len(offsets) > 1700 and worst <= 0.040 and after_reports <= 0.002 and follows <= 0.040


def test_before_any_report_arrival_times_keep_the_late_track_in_place() -> None:
    offsets = simulate(60.0, first_report=90.0)  # no sender report at all in this minute
    worst = max(abs(offset) for _, offset, _ in offsets)
    print(f"\nno sender reports: worst A/V offset {worst * 1000:.1f} ms")
    assert worst <= 0.040
