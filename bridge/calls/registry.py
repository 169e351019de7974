"""The registry of active call sessions: admission (409s), start, terminate, removal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from bridge.calls.record import BaseSession
from bridge.calls.services import Services
from bridge.calls.sip_call import CallSession
from bridge.channel.counters import zero_counters
from bridge.cluster.keys import stream_digest
from bridge.cluster.registry import Claim, Conflict, RegistryUnavailable
from bridge.model import CallSpec, utc_now
from bridge.ops.logs import REDACTOR
from bridge.workers.handle import STOP_TIMEOUT

log = logging.getLogger("bridge.calls")
RECENT_CALLS_KEPT = 200  # ended calls kept in memory (older ones are read from the history)
SessionFactory = Callable[[CallSpec, Services], BaseSession]


class DuplicateCall(Exception):
    """The callId, or the RTMP stream, is already in use by an active call."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class AtCapacity(Exception):
    """No new call now: a limit is reached (``at_capacity``) or the bridge is ``shutting_down``."""

    def __init__(self, message: str, code: str = "at_capacity") -> None:
        super().__init__(message)
        self.code = code


def describe_conflict(spec: CallSpec, conflict: Conflict) -> tuple[str, str]:
    """The field and message of a 409 for a callId or stream held elsewhere in the cluster."""
    if conflict.field == "callId":
        return "callId", f"call {spec.call_id!r} is already active on node {conflict.holder!r} of the cluster"
    field = "rtmpStream" if len(spec.destinations) == 1 else "outputs"
    return field, f"a destination of this call is already published by call {conflict.holder!r} in the cluster"


class CallManager:
    """Starts one session task per call in the daemon's TaskGroup and tracks them."""

    def __init__(self, services: Services, group: asyncio.TaskGroup) -> None:
        self.services = services
        self._group = group
        self.sessions: dict[str, BaseSession] = {}
        self.recent: OrderedDict[str, BaseSession] = OrderedDict()
        self._streams: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.shutting_down = False
        self.draining = False  # `sip-rtmp-bridge drain`: no new calls; stop when the last one ends
        self.on_drained: Callable[[], None] = lambda: None  # the daemon's graceful stop
        self._empty = asyncio.Event()
        self._empty.set()
        self._deadlines: dict[str, asyncio.TimerHandle] = {}

    async def admit(self, spec: CallSpec, create: SessionFactory = CallSession) -> BaseSession:
        """:meth:`start`, after the cluster made the callId and streams this node's (``[cluster]``):
        a duplicate on any node is a 409, Redis out of reach a 503; without a cluster, just start."""
        cluster = self.services.cluster
        if cluster is None:
            return self.start(spec, create)
        stream_keys = self._check_admission(spec)
        claim = Claim(
            spec.call_id, tuple(stream_digest(key) for key in stream_keys), spec.app_key, utc_now().isoformat()
        )
        try:
            conflict = await cluster.claim(claim)
        except RegistryUnavailable as exc:
            message = f"{exc}; new calls are refused until it returns, retry later"
            raise AtCapacity(message, "registry_unavailable") from None
        if conflict is not None:
            raise DuplicateCall(*describe_conflict(spec, conflict))
        try:
            return self.start(spec, create)  # checks again: limits may have been reached while Redis answered
        except BaseException:
            await cluster.release(spec.call_id)
            raise

    def start(self, spec: CallSpec, create: SessionFactory = CallSession) -> BaseSession:
        """Admit and start a call (a SIP call unless ``create`` makes another kind of session);
        raise :class:`DuplicateCall` on conflicts, :class:`AtCapacity` at a limit."""
        stream_keys = self._check_admission(spec)
        REDACTOR.register(*spec.secrets(), owner=spec.call_id)
        session = create(spec, self.services)
        self.sessions[spec.call_id] = session
        self._empty.clear()
        self._streams.update(dict.fromkeys(stream_keys, spec.call_id))
        self._tasks[spec.call_id] = self._group.create_task(self._run(session, stream_keys))
        self._arm_duration_limit(session)
        if self.services.history is not None:
            self.services.history.started(session.stored_view())
        return session

    def _check_admission(self, spec: CallSpec) -> list[str]:
        """The checks every new call passes on this node; the destinations' dedupe keys."""
        if self.shutting_down:
            raise AtCapacity(
                "the bridge is shutting down and accepts no new calls; retry on another instance", "shutting_down"
            )
        if self.draining:
            raise AtCapacity(
                "this bridge is draining (sip-rtmp-bridge drain) and takes no new calls; retry on another node",
                "draining",
            )
        self.check_capacity()
        if spec.call_id in self.sessions:
            raise DuplicateCall("callId", f"call {spec.call_id!r} is already active")
        return self._check_destinations(spec)

    def _check_destinations(self, spec: CallSpec) -> list[str]:
        """One publisher per stream: a destination of an active call (or twice in this one) is a 409."""
        keys: list[str] = []
        single = len(spec.destinations) == 1
        for index, destination in enumerate(spec.destinations):
            key = destination.target.dedupe_key()
            field = "rtmpStream" if single else f"outputs.{index}.rtmpStream"
            shown = destination.target.display(spec.reveal_stream_names)
            if key in keys:
                raise DuplicateCall(field, f"{shown} is named twice in this call's outputs")
            if key in self._streams:
                raise DuplicateCall(field, f"{shown} is already published by call {self._streams[key]!r}")
            keys.append(key)
        return keys

    def check_capacity(self) -> None:
        """503 before anything is started: limits.max_calls, then one RTP port pair per call."""
        limit = self.services.config.limits.max_calls
        if len(self.sessions) >= limit:
            raise AtCapacity(f"the bridge is at capacity ({limit} active calls, limits.max_calls); retry later")
        by_descriptors = self.services.max_calls_by_descriptors
        if by_descriptors is not None and len(self.sessions) >= by_descriptors:
            raise AtCapacity(
                f"the open-file limit allows only {by_descriptors} concurrent calls; "
                "the operator must raise LimitNOFILE= (or ulimit -n); retry later"
            )
        media = self.services.media
        refusal = media.refusal() if media is not None else None
        if refusal is not None:
            raise AtCapacity(refusal + "; retry later or add capacity")
        ports = self.services.ports
        if len(self.sessions) >= ports.capacity:
            raise AtCapacity(
                f"no free RTP port pair: rtp.port_range {ports.first}-{ports.last} holds {ports.capacity} "
                "pairs and every one is in use; widen rtp.port_range or retry later"
            )

    def _arm_duration_limit(self, session: BaseSession) -> None:
        """limits.max_call_seconds, counted from the request: the call is hung up with the reason."""
        limit = self.services.config.limits.max_call_seconds
        if limit > 0:
            reason = f"maximum call duration reached ({limit:g} s, limits.max_call_seconds)"
            loop = asyncio.get_running_loop()
            self._deadlines[session.spec.call_id] = loop.call_later(limit, session.terminate, reason)

    def find(self, call_id: str) -> BaseSession | None:
        """An active call, or one of the last ended ones (to read its final state)."""
        return self.sessions.get(call_id) or self.recent.get(call_id)

    def stats(self, call_id: str | None) -> list[dict[str, Any]]:
        """The counters of every active call (or of ``call_id``): ``calls.stats`` events' entries."""
        return [
            {
                "callId": session.spec.call_id,
                "appKey": session.spec.app_key,
                "state": session.state.value,
                "streamState": session.stream_state.value,
                "counters": {**zero_counters(), **session.counters()},  # all keys, even before media starts
            }
            for session in self.sessions.values()
            if call_id is None or session.spec.call_id == call_id
        ]

    def terminate(self, call_id: str) -> BaseSession | None:
        session = self.sessions.get(call_id)
        if session is not None:
            session.terminate()
        return session

    def drain(self, timeout: float) -> asyncio.Task[None] | None:
        """Take no new calls; call :attr:`on_drained` when the last call has ended, or after ``timeout``
        seconds (the daemon then stops as on SIGTERM, hanging up what is left). None if already draining."""
        if self.draining or self.shutting_down:
            return None
        self.draining = True
        return self._group.create_task(self._wait_drained(timeout))

    async def _wait_drained(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._empty.wait()
        left = len(self.sessions)
        log.warning(
            "drained: %s; stopping", f"{left} call(s) still active after {timeout:g} s" if left else "no calls left"
        )
        self.on_drained()

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
            if pending:  # cancelled sessions still release their media (bounded by the stop timeout)
                await asyncio.wait(pending, timeout=STOP_TIMEOUT + 1.0)

    async def _run(self, session: BaseSession, stream_keys: list[str]) -> None:
        try:
            await session.run()
        finally:
            call_id = session.spec.call_id
            self.sessions.pop(call_id, None)
            if not self.sessions:
                self._empty.set()
            for key in stream_keys:
                self._streams.pop(key, None)
            self._tasks.pop(call_id, None)
            REDACTOR.unregister(*session.spec.secrets(), owner=call_id)
            deadline = self._deadlines.pop(call_id, None)
            if deadline is not None:
                deadline.cancel()
            self.recent[call_id] = session
            self.recent.move_to_end(call_id)
            if self.services.history is not None:
                self.services.history.ended(session.stored_view())
            while len(self.recent) > RECENT_CALLS_KEPT:
                self.recent.popitem(last=False)
            if self.services.cluster is not None:
                await self.services.cluster.release(call_id)
            log.info(
                "call %s removed (%s: %s)", call_id, session.state.value, session.reason, extra={"call_id": call_id}
            )
