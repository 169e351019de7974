"""The registry of active call sessions: admission (409s), start, terminate, removal."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from bridge.model import CallSpec
from bridge.rtmp.url import RtmpTarget
from bridge.services import Services
from bridge.session import CallSession

log = logging.getLogger("bridge.calls")
RECENT_CALLS_KEPT = 1000


class DuplicateCall(Exception):
    """The callId, or the RTMP stream, is already in use by an active call."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class AtCapacity(Exception):
    """limits.max_calls calls are active, or the bridge is shutting down."""


class CallManager:
    """Starts one session task per call in the daemon's TaskGroup and tracks them."""

    def __init__(self, services: Services, group: asyncio.TaskGroup) -> None:
        self.services = services
        self._group = group
        self.sessions: dict[str, CallSession] = {}
        self.recent: OrderedDict[str, CallSession] = OrderedDict()
        self._streams: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.shutting_down = False

    def start(self, spec: CallSpec, target: RtmpTarget) -> CallSession:
        """Admit and start a call; raise :class:`DuplicateCall` on conflicts."""
        if self.shutting_down:
            raise AtCapacity("the bridge is shutting down and accepts no new calls; retry on another instance")
        limit = self.services.config.limits.max_calls
        if len(self.sessions) >= limit:
            raise AtCapacity(f"the bridge is at capacity ({limit} active calls, limits.max_calls); retry later")
        if spec.call_id in self.sessions:
            raise DuplicateCall("callId", f"call {spec.call_id!r} is already active")
        stream_key = target.public_url().lower()
        if stream_key in self._streams:
            owner = self._streams[stream_key]
            raise DuplicateCall("rtmpStream", f"{target.public_url()} is already published by call {owner!r}")
        session = CallSession(spec, target, self.services)
        self.sessions[spec.call_id] = session
        self._streams[stream_key] = spec.call_id
        self._tasks[spec.call_id] = self._group.create_task(self._run(session, stream_key))
        if self.services.history is not None:
            self.services.history.started(session.snapshot())
        return session

    def find(self, call_id: str) -> CallSession | None:
        """An active call, or one of the last ended ones (to read its final state)."""
        return self.sessions.get(call_id) or self.recent.get(call_id)

    def terminate(self, call_id: str) -> CallSession | None:
        session = self.sessions.get(call_id)
        if session is not None:
            session.terminate()
        return session

    async def terminate_all(self, timeout: float) -> None:
        """Refuse new calls, hang up every call and wait (bounded) for them to finish."""
        self.shutting_down = True
        for session in list(self.sessions.values()):
            session.terminate("bridge shutting down")
        tasks = list(self._tasks.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()

    async def _run(self, session: CallSession, stream_key: str) -> None:
        try:
            await session.run()
        finally:
            call_id = session.spec.call_id
            self.sessions.pop(call_id, None)
            self._streams.pop(stream_key, None)
            self._tasks.pop(call_id, None)
            self.recent[call_id] = session
            self.recent.move_to_end(call_id)
            if self.services.history is not None:
                self.services.history.ended(session.snapshot())
            while len(self.recent) > RECENT_CALLS_KEPT:
                self.recent.popitem(last=False)
            log.info("call %s removed (%s: %s)", call_id, session.state.value, session.reason)
