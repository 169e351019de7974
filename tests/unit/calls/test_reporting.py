"""A call's reporting: what subscribers of the bus get, what the log shows, what history keeps."""

from __future__ import annotations

import logging

import pytest

from bridge.calls.reporting import CallReporting
from bridge.ops.bus import EventBus


def reporting(bus: EventBus, masks: bool) -> CallReporting:
    return CallReporting("c-7", "app", bus, None, lambda: masks, lambda: {"packets": 12})


async def test_changes_reach_the_bus_with_the_last_counters() -> None:
    bus = EventBus()
    subscription = bus.subscribe(call_id="c-7")
    calls = reporting(bus, masks=True)
    calls.state_changed("ESTABLISHED", "answered")
    calls.stream_changed(0, "rtmp://cdn/live/••••", "PUBLISHING", "published", "PUBLISHING")
    events = [subscription.queue.get_nowait() for _ in range(2)]
    assert [(e.type, e.call_id, e.app_key) for e in events] == [
        ("call.state", "c-7", "app"),
        ("stream.state", "c-7", "app"),
    ]
    assert events[0].data == {"state": "ESTABLISHED", "reason": "answered", "counters": {"packets": 12}}
    assert events[1].data["destination"] == 0 and events[1].data["streamState"] == "PUBLISHING"


@pytest.mark.parametrize("masks", [True, False])
def test_dtmf_digits_are_masked_in_the_log_and_the_stored_view_when_asked(
    masks: bool, caplog: pytest.LogCaptureFixture
) -> None:
    calls = reporting(EventBus(), masks)
    entry = {"at": "2026-12-07T21:00:00+00:00", "event": "dtmf", "digit": "7", "via": "INFO"}
    with caplog.at_level(logging.INFO, logger="bridge.session"):
        calls.noted(entry)
    logged = caplog.records[-1].getMessage()
    stored = calls.stored({"timeline": [entry]})
    assert ("'digit': '7'" in logged) is not masks and (stored["timeline"][0]["digit"] == "7") is not masks
    assert caplog.records[-1].call_id == "c-7"  # type: ignore[attr-defined]  # only this call's secrets mask it
