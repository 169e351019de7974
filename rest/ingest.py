"""``/ingest/<route>``: WebSocket media streams (Twilio, ACS, RingCentral) as calls (asyncio driver).

Before the upgrade: the route must exist (404), the sender must authenticate (403: Twilio's
signature, or the route token), a ``callId`` query parameter must be free (409), and the
bridge must have room (503 with Retry-After; RingCentral retries a 5xx, not a 4xx). After
it, one reader task feeds each message to the protocol core and acts on its events; the
call starts with the stream's start message. Every end — a stop message, the sender's
close, a torn connection, a protocol error, an API hang-up — closes the socket with its
code (RFC 6455 7.4.1) and ends the call with a reason, once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import WSMessage, WSMsgType, web

from bridge.calls import AtCapacity, CallManager, DuplicateCall
from bridge.connlimit import Throttle
from bridge.ingest.acs import AcsStream
from bridge.ingest.config import IngestRoute
from bridge.ingest.core import MAX_MESSAGE_BYTES, StreamCore
from bridge.ingest.events import (
    INTERNAL_ERROR,
    MESSAGE_TOO_BIG,
    NORMAL_CLOSURE,
    POLICY_VIOLATION,
    TRY_AGAIN_LATER,
    AudioReceived,
    DigitReceived,
    IngestEvent,
    StreamStarted,
    StreamStopped,
    Violation,
)
from bridge.ingest.feed import StreamFeed
from bridge.ingest.ringcentral import RingCentralStream
from bridge.ingest.session import IngestSession
from bridge.ingest.signature import token_valid, twilio_signature_valid
from bridge.ingest.spec import IngestSource, SpecError, call_id_of, ingest_spec
from bridge.ingest.stats import UNKNOWN_ROUTE
from bridge.ingest.twilio import TwilioStream
from bridge.model import CallState
from rest.common import MANAGER_KEY
from rest.errors import error_response
from rest.streams import STREAM_LIMITS_KEY

REFUSAL_LOG = Throttle(60.0)
log = logging.getLogger("bridge.ingest")
READ_LIMIT_BYTES = 4 * MAX_MESSAGE_BYTES
START_TIMEOUT = 10.0  # seconds from the upgrade to the stream's start message
CORES: dict[str, type[StreamCore]] = {"twilio": TwilioStream, "acs": AcsStream, "ringcentral": RingCentralStream}
_CLEAN_CLOSES = (1000, 1001)


def public_url(request: web.Request, http: bool = False) -> str:
    """The URL the platform used for this request, as it signs it.

    ``ingest.public_url`` (e.g. ``wss://bridge.example.com/media`` for a proxy that strips
    ``/media``) followed by the path and query the daemon received; without it, the request's
    own host. ``http``: the same base as ``https://`` (Twilio's voice webhooks).
    """
    config = request.app[MANAGER_KEY].services.config.ingest
    base = config.public_base(request.host, request.secure)
    if http:
        base = base.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    return base + request.rel_url.raw_path_qs


def authenticate(request: web.Request, route: IngestRoute) -> str | None:
    """None when the request is the route's sender, else why not (answered 403)."""
    if route.protocol == "twilio":
        signature = request.headers.get("X-Twilio-Signature", "")
        if not twilio_signature_valid(route.secret, public_url(request), signature):
            return "X-Twilio-Signature is missing or wrong (check the route's secret and ingest.public_url)"
        return None
    if not token_valid(route.secret, request.query.get("token", "")):
        return "the token query parameter is missing or wrong"
    return None


async def ingest(request: web.Request) -> web.StreamResponse:
    manager = request.app[MANAGER_KEY]
    name = request.match_info["route"]
    route = manager.services.config.ingest.routes.get(name)
    stats = manager.services.ingest_stats
    if route is None:
        stats.refused[(UNKNOWN_ROUTE, "", 404)] += 1
        return error_response(404, "not_found", f"no ingest route {name!r} ([ingest.routes.{name}])")
    refused = _refusal(request, name, route, manager)
    if refused is not None:
        stats.refused[(name, route.protocol, refused.status)] += 1
        return refused
    # aiohttp drops a connection whose message exceeds max_msg_size without a close frame; below
    # that hard bound, a message over MAX_MESSAGE_BYTES gets a proper 1009 from us.
    limits = request.app[STREAM_LIMITS_KEY]
    with limits.slot(limits.ingest, name):
        socket = web.WebSocketResponse(max_msg_size=READ_LIMIT_BYTES, autoclose=True)
        await socket.prepare(request)
        query = {key: value for key, value in request.query.items() if key != "token"}
        core = CORES[route.protocol](query, dict(request.headers))
        code = await IngestConnection(socket, name, route, core, manager).serve()
    stats.closed[(name, route.protocol, code)] += 1
    return socket


def _refusal(request: web.Request, name: str, route: IngestRoute, manager: CallManager) -> web.Response | None:
    """The answer to an upgrade that must not become a call (403, 409, 503), or None."""
    refusal = authenticate(request, route)
    if refusal is not None:
        if REFUSAL_LOG.allow(time.monotonic()):  # anyone can cause it: one line a minute at most
            held = REFUSAL_LOG.take_suppressed()
            more = f" ({held} more refused since the last such line)" if held else ""
            log.warning("ingest route %s: refused a connection from %s: %s%s", name, request.remote, refusal, more)
        return error_response(403, "forbidden", refusal)
    call_id = request.query.get("callId")
    if call_id in manager.sessions:
        return error_response(409, "conflict", f"call {call_id!r} is already active", "callId")
    try:
        manager.check_capacity()
    except AtCapacity as exc:
        response = error_response(503, exc.code, str(exc))
        response.headers["Retry-After"] = "5"
        return response
    return None


class IngestConnection:
    """One WebSocket: its reader, its call (from the start message on), and its one close."""

    def __init__(
        self, socket: web.WebSocketResponse, name: str, route: IngestRoute, core: StreamCore, manager: CallManager
    ) -> None:
        self._socket = socket
        self._name = name
        self._route = route
        self._core = core
        self._manager = manager
        self.session: IngestSession | None = None
        self._closing: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    async def serve(self) -> int:
        """Read until the connection ends; the close code it ended with."""
        async with asyncio.TaskGroup() as group:
            reader = group.create_task(self._read())
            code, reason = await self._closing
            reader.cancel()
        if not self._socket.closed:
            await self._socket.close(code=code, message=reason.encode()[:123])
        if self.session is None:
            log.info("ingest route %s: closed %d before any call (%s)", self._name, code, reason)
        return code

    def close(self, code: int, reason: str) -> None:
        """Close the connection with ``code`` (once; the first reason wins)."""
        if not self._closing.done():
            self._closing.set_result((code, reason))

    def _end(self, state: CallState, reason: str, code: int) -> None:
        if self.session is not None:
            self.session.ended(state, reason)
        self.close(code, reason)

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(START_TIMEOUT) as until_start:
                while not self._closing.done():
                    message = await self._socket.receive()
                    events = self._events(message, loop.time())
                    if events is None:
                        return
                    for event in events:
                        if isinstance(event, StreamStarted):
                            await self._start(event)  # claimed across the cluster first ([cluster])
                        else:
                            self._handle(event)
                    if self._core.started is not None:
                        until_start.reschedule(None)
        except TimeoutError:
            self._end(CallState.FAILED, f"no start message within {START_TIMEOUT:g} s", POLICY_VIOLATION)
        except Exception as exc:  # a defect must cost one connection, not the daemon
            log.exception("ingest route %s: internal error", self._name)
            self._end(CallState.FAILED, f"internal error: {type(exc).__name__}", INTERNAL_ERROR)

    def _events(self, message: WSMessage, now: float) -> list[IngestEvent] | None:
        """What one WebSocket message means; None when the sender closed (or broke) the connection."""
        if message.type is WSMsgType.TEXT:
            if len(message.data) > MAX_MESSAGE_BYTES:
                return [Violation(MESSAGE_TOO_BIG, f"a message of more than {MAX_MESSAGE_BYTES} bytes")]
            return self._core.receive_text(message.data, now)
        if message.type is WSMsgType.BINARY:
            return self._core.receive_binary()
        self._closed_by_peer(message.type, message.data)
        return None

    def _handle(self, event: IngestEvent) -> None:
        session = self.session
        if isinstance(event, AudioReceived):
            if session is not None:
                session.audio(event)
        elif isinstance(event, DigitReceived):
            if session is not None:
                session.digit(event)
        elif isinstance(event, StreamStopped):
            self._end(CallState.FINISH, event.reason, NORMAL_CLOSURE)
        elif isinstance(event, Violation):
            self._end(CallState.FAILED, f"protocol error ({event.code}): {event.reason}", event.code)

    async def _start(self, started: StreamStarted) -> None:
        config = self._manager.services.config
        try:
            spec = ingest_spec(self._name, self._route, started, config, self._manager.services.slate_images)
            source = IngestSource(self._name, self._route.protocol, started.platform_id, started.tracks)
            factory = IngestSession.factory(source, StreamFeed(started.encoding, started.rate), self.close)
            session = await self._manager.admit(spec, factory)
        except SpecError as exc:
            return self._end(CallState.FAILED, str(exc), POLICY_VIOLATION)
        except DuplicateCall as exc:
            return self._end(CallState.FAILED, str(exc), POLICY_VIOLATION)
        except AtCapacity as exc:
            return self._end(CallState.FAILED, str(exc), TRY_AGAIN_LATER)
        assert isinstance(session, IngestSession)
        self.session = session
        log.info("ingest route %s: call %s started (%s)", self._name, call_id_of(started), self._route.protocol)

    def _closed_by_peer(self, kind: WSMsgType, data: object) -> None:
        """The sender closed (or the connection broke) without a stop message."""
        if kind is WSMsgType.ERROR:
            code = getattr(data, "code", 1006)
            self._end(CallState.FAILED, f"protocol error ({code}): {data}", code)
            return
        code = self._socket.close_code or 1006
        if code in _CLEAN_CLOSES:
            self._end(CallState.FINISH, f"the sender closed the connection ({code}) without a stop message", code)
        else:
            self._end(CallState.FAILED, f"the connection was torn down ({code}) without a stop message", code)


def add_ingest_routes(app: web.Application) -> None:
    app.router.add_get("/ingest/{route}", ingest)
