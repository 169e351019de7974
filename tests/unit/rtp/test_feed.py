"""An ingest call's frames straight into per-track playout (rtp.feed): mixing, loss, wrap, µ-law."""

from __future__ import annotations

import audioop  # the standard library's G.711 codec: an implementation we did not write

import numpy as np
import numpy.typing as npt

from rtp.feed import MAX_TRACKS, FeedTracks
from rtp.playout import PlayoutBuffer


def _s16le(payload: bytes) -> npt.NDArray[np.int16]:
    return np.frombuffer(payload, "<i2")


def _linear_tracks(rate: int = 8000, stereo: bool = False) -> FeedTracks:
    return FeedTracks(lambda: PlayoutBuffer(encoding="linear", rate=rate), _s16le, 2, stereo)


def _tone(frequency: float, n: int, samples: int = 160, rate: int = 8000) -> bytes:
    t = (np.arange(samples) + n * samples) / rate
    return (np.sin(2 * np.pi * frequency * t) * 8000).astype("<i2").tobytes()


def _level_at(block: npt.NDArray[np.int16], rate: int, frequency: float) -> float:
    """The spectrum's peak within 20 Hz of ``frequency``, relative to its median (dB)."""
    spectrum = np.abs(np.fft.rfft(block.astype(np.float64) * np.hanning(len(block))))
    bins = np.fft.rfftfreq(len(block), 1 / rate)
    near = spectrum[np.abs(bins - frequency) <= 20].max()
    return float(20 * np.log10(near / np.median(spectrum)))


def test_two_tracks_are_played_out_separately_and_mixed_despite_reordering() -> None:
    tracks = _linear_tracks()
    now = 0.0
    for n in range(100):  # 2 s of 440 Hz on track 0 and 880 Hz on track 1; every fifth pair swapped
        frames = [(0, n * 160, _tone(440.0, n)), (1, n * 160, _tone(880.0, n))]
        if n % 5 == 0 and n:
            frames.append(frames.pop(0))
        for track, timestamp, payload in frames:
            tracks.push(track, timestamp, payload, now)
        now += 0.02
    pulls, own = [], []
    for i in range(100):
        pulls.append(tracks.pull(160, 0.1 + i * 0.02))
        own.append(tracks.track_blocks())
    mixed = np.concatenate(pulls)
    heard = {f: _level_at(mixed[800:], 8000, f) for f in (440.0, 660.0, 880.0)}
    assert min(heard[440.0], heard[880.0]) > 40 and heard[660.0] < min(heard[440.0], heard[880.0]) - 15, heard
    counters = tracks.counters()
    assert counters["ingestTracks"] == 2 and counters["packets"] == 200 and counters["lost"] == 0
    first = np.concatenate([blocks[0] for blocks in own[10:90]])  # each track's own audio, for its file
    second = np.concatenate([blocks[1] for blocks in own[10:90]])
    assert _level_at(first, 8000, 440.0) > _level_at(first, 8000, 880.0) + 30
    assert _level_at(second, 8000, 880.0) > _level_at(second, 8000, 440.0) + 20


def test_stereo_lays_tracks_out_left_and_right() -> None:
    tracks = _linear_tracks(stereo=True)
    for n in range(50):
        tracks.push(0, n * 160, _tone(440.0, n), n * 0.02)
        tracks.push(1, n * 160, _tone(880.0, n), n * 0.02)
    block = np.concatenate([tracks.pull(160, 0.1 + i * 0.02) for i in range(50)])
    assert block.shape == (8000, 2)
    left, right = block[400:, 0], block[400:, 1]
    assert _level_at(left, 8000, 440.0) > _level_at(left, 8000, 880.0) + 30
    assert _level_at(right, 8000, 880.0) > _level_at(right, 8000, 440.0) + 30


def test_the_layout_follows_the_track_numbers_whichever_track_speaks_first() -> None:
    tracks = _linear_tracks(stereo=True)
    for n in range(50):  # the second track's frames arrive first, from the very first one
        tracks.push(1, n * 160, _tone(880.0, n), n * 0.02)
        tracks.push(0, n * 160, _tone(440.0, n), n * 0.02)
    block = np.concatenate([tracks.pull(160, 0.1 + i * 0.02) for i in range(40)])
    own = tracks.track_blocks()
    left, right = block[400:, 0], block[400:, 1]
    assert _level_at(left, 8000, 440.0) > _level_at(left, 8000, 880.0) + 30  # track 0 on the left
    assert _level_at(right, 8000, 880.0) > _level_at(right, 8000, 440.0) + 30
    assert list(own) == [0, 1] and np.array_equal(own[0], block[-160:, 0])


def test_frames_missing_from_the_timeline_are_counted_as_lost_across_a_timestamp_wrap() -> None:
    tracks = _linear_tracks()
    start = 0xFFFFFFFF - 160 * 10 + 1  # the 32-bit timestamp wraps after ten frames
    dropped = {3, 11, 12, 30}
    for n in range(40):
        if n not in dropped:
            tracks.push(0, (start + n * 160) & 0xFFFFFFFF, _tone(440.0, n), n * 0.02)
    counters = tracks.counters()
    assert counters["packets"] == 36 and counters["lost"] == 4  # 40 frames on the timeline, 36 came
    tracks.push(0, (start + 12 * 160) & 0xFFFFFFFF, _tone(440.0, 12), 0.9)  # one arrives late after all
    assert tracks.counters()["lost"] == 3


def test_a_message_longer_than_20_ms_counts_as_its_samples_not_as_loss() -> None:
    tracks = _linear_tracks(rate=16000)
    for n in range(10):  # 40 ms messages at 16 kHz (ACS may send any length)
        tracks.push(0, n * 640, _tone(440.0, n, 640, 16000), n * 0.04)
    assert tracks.counters() | {"packets": 10, "lost": 0} == tracks.counters()


def test_tracks_beyond_the_limit_are_refused_and_counted() -> None:
    tracks = _linear_tracks()
    for track in range(MAX_TRACKS + 2):
        tracks.push(track, 0, _tone(440.0, 0), 0.0)
    counters = tracks.counters()
    assert counters["ingestTracks"] == MAX_TRACKS and counters["foreignPackets"] == 2
    tracks.push(-1, 0, _tone(440.0, 0), 0.0)
    assert tracks.counters()["foreignPackets"] == 3


def test_ulaw_frames_play_out_as_the_standard_library_decodes_them() -> None:
    tracks = FeedTracks(lambda: PlayoutBuffer(encoding="pcmu", rate=8000, initial_delay=160), None, 1)
    linear = np.concatenate([np.frombuffer(_tone(440.0, n), "<i2") for n in range(20)])
    coded = audioop.lin2ulaw(linear.tobytes(), 2)
    pulls = []
    for n in range(24):  # a frame every 20 ms, pulled as it is due
        if n < 20:
            tracks.push(0, n * 160, coded[n * 160 : (n + 1) * 160], n * 0.02)
        pulls.append(tracks.pull(160, n * 0.02 + 0.001))
    played = np.concatenate(pulls)
    expected = np.frombuffer(audioop.ulaw2lin(coded, 2), "<i2")
    starts = [i for i in range(len(played) - 1600 + 1) if np.array_equal(played[i : i + 1600], expected[:1600])]
    assert starts, "the played samples are not the standard library's decoding"
