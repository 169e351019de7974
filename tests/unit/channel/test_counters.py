"""The counters model: the API's shape from typed parts, and no undeclared counter."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bridge.channel.counters import DestinationCounters, MediaCounters, VideoCounters, zero_counters


def test_the_view_puts_video_beside_audio_and_lists_destinations() -> None:
    counters = MediaCounters(
        packets=10,
        video=VideoCounters(videoPackets=4, videoArrivalOffsetMs=None),
        destinations=[DestinationCounters(reconnects=2), DestinationCounters()],
    )
    view = counters.view()
    assert view["packets"] == 10 and view["videoPackets"] == 4 and view["videoArrivalOffsetMs"] is None
    assert [d["reconnects"] for d in view["destinations"]] == [2, 0]
    assert "ingestTracks" not in view and "video" not in view  # a SIP call's view has no stream tracks
    assert MediaCounters(ingestTracks=2).view()["ingestTracks"] == 2


def test_an_audio_call_shows_no_video_counters() -> None:
    view = MediaCounters().view()
    assert not any(key.startswith("video") for key in view if key != "videoFramesSent")
    assert view["levelDbfs"] == -120.0


def test_a_counter_the_model_does_not_declare_is_refused() -> None:
    with pytest.raises(ValidationError, match="packetz"):
        MediaCounters.model_validate({"packetz": 1})
    with pytest.raises(ValidationError, match="bytes"):
        DestinationCounters.model_validate({"bytes": 1})


def test_zero_counters_has_every_key_and_one_entry_per_destination() -> None:
    zero = zero_counters(3)
    assert len(zero["destinations"]) == 3 and set(zero) == set(MediaCounters(ingestTracks=0).view()) - {"ingestTracks"}
    assert all(value == 0 for key, value in zero.items() if key not in ("destinations", "levelDbfs"))
