"""Where a call's changes go: the event bus (webhooks, live events, metrics), the stored
history and the log, with DTMF digits masked where ``log.mask_dtmf`` asks for it.

The call record (:mod:`bridge.calls.record`) says what changed; this says it to everyone who
listens, so the record holds no bus, store or masking rule of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bridge.calls.destinations import mask_dtmf
from bridge.history import HistoryStore
from bridge.ops.bus import BusEvent, EventBus

log = logging.getLogger("bridge.session")


class CallReporting:
    """One call's reporting: ``counters`` is read when an event goes out (the last the worker sent)."""

    def __init__(
        self,
        call_id: str,
        app_key: str,
        bus: EventBus,
        history: HistoryStore | None,
        masks_dtmf: Callable[[], bool],
        counters: Callable[[], dict[str, Any]],
    ) -> None:
        self.call_id, self.app_key = call_id, app_key
        self._bus, self._history = bus, history
        self._masks_dtmf, self._counters = masks_dtmf, counters
        self._log = {"call_id": call_id}  # the record's owner: only this call's secrets mask its lines

    def publish(self, kind: str, **data: Any) -> None:
        """Tell webhooks, live events and metrics (never blocks)."""
        data.setdefault("counters", self._counters())
        self._bus.publish(BusEvent(kind, self.call_id, self.app_key, data))

    def state_changed(self, state: str, reason: str) -> None:
        log.info("call %s: %s (%s)", self.call_id, state, reason, extra=self._log)
        self.publish("call.state", state=state, reason=reason)
        if self._history is not None:
            self._history.state_changed(self.call_id, state, reason)

    def noted(self, entry: dict[str, Any]) -> None:
        """A timeline entry (``at``, ``event`` and its details): logged masked, published as it is."""
        logged = mask_dtmf(entry) if self._masks_dtmf() else entry
        shown = {key: value for key, value in logged.items() if key not in ("at", "event")}
        log.info("call %s: %s %s", self.call_id, entry["event"], shown, extra=self._log)
        details = {key: value for key, value in entry.items() if key not in ("at", "event")}
        self.publish("call.event", event=entry["event"], **details)

    def stream_changed(self, index: int, label: str, state: str, reason: str, combined: str) -> None:
        log.info("call %s: stream %d %s %s (%s)", self.call_id, index, label, state, reason, extra=self._log)
        self.publish(
            "stream.state", state=state, reason=reason, destination=index, rtmpTarget=label, streamState=combined
        )

    def stored(self, view: dict[str, Any]) -> dict[str, Any]:
        """What the history keeps of a snapshot: DTMF digits masked unless log.mask_dtmf is off."""
        if self._masks_dtmf():
            view["timeline"] = [mask_dtmf(entry) for entry in view["timeline"]]
        return view
