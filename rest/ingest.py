"""``/ingest/<route>``: WebSocket media streams (Twilio, ACS, RingCentral) as calls (asyncio driver).

Before the upgrade: the route must exist (404), the sender must authenticate (403: Twilio's
signature, or the route token), a ``callId`` query parameter must be free (409), and the
bridge must have room (503 with Retry-After; RingCentral retries a 5xx, not a 4xx). After
it, every read from the connection goes, in the transport's own callback, through the
WebSocket core (:mod:`bridge.wsmedia.websocket`) and the platform's protocol core, and the
events are acted on at once (no task wake-up per message); the call starts with the stream's
start message. Every end — a stop message, the sender's
close, a torn connection, a protocol error, an API hang-up — closes the socket with its
code (RFC 6455 7.4.1) and ends the call with a reason, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

from aiohttp import web

from bridge.calls.registry import AtCapacity, CallManager, DuplicateCall
from bridge.wsmedia.acs import AcsStream
from bridge.ingest.config import IngestRoute
from bridge.wsmedia.core import MAX_MESSAGE_BYTES, StreamCore
from bridge.wsmedia.events import (
    INTERNAL_ERROR,
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
from bridge.wsmedia.ringcentral import RingCentralStream
from bridge.ingest.session import IngestSession
from bridge.ingest.signature import token_valid, twilio_signature_valid
from bridge.ingest.spec import IngestSource, SpecError, call_id_of, ingest_spec
from bridge.ingest.stats import UNKNOWN_ROUTE
from bridge.wsmedia.twilio import TwilioStream
from bridge.wsmedia.websocket import (
    NO_STATUS,
    BinaryReceived,
    CloseReceived,
    HandshakeError,
    ServerConnection,
    TextReceived,
    WebSocketEvent,
    accept_key,
)
from bridge.model import CallState
from bridge.net.connlimit import Throttle
from rest.common import MANAGER_KEY
from rest.errors import error_response
from bridge.net.grid_poller import GridPoller
from rest.streams import STREAM_LIMITS_KEY

REFUSAL_LOG = Throttle(60.0)
log = logging.getLogger("bridge.ingest")
INGEST_POLLER_KEY = web.AppKey("ingest_poller", GridPoller)
START_TIMEOUT = 10.0  # seconds from the upgrade to the stream's start message
CLOSE_TIMEOUT = 2.0  # seconds for the client's close frame after ours
WRITE_BACKLOG_BYTES = 256 * 1024  # our unread pongs and close frame a sender may leave us holding
ADMITTING_EVENTS = 500  # events held while the call is admitted (10 s of one track's media)
CORES: dict[str, type[StreamCore]] = {"twilio": TwilioStream, "acs": AcsStream, "ringcentral": RingCentralStream}
_CLEAN_CLOSES = (1000, 1001, NO_STATUS)


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
    try:
        accept = accept_key(request.headers)
    except HandshakeError as exc:
        return error_response(exc.status, "bad_request", f"not a WebSocket upgrade: {exc}")
    limits = request.app[STREAM_LIMITS_KEY]
    with limits.slot(limits.ingest, name):
        response = web.StreamResponse(status=101, reason="Switching Protocols", headers=_upgrade_headers(accept))
        await response.prepare(request)
        transport = request.transport
        if transport is None:  # the client left during the upgrade
            return response
        query = {key: value for key, value in request.query.items() if key != "token"}
        core = CORES[route.protocol](query, dict(request.headers))
        connection = IngestConnection(transport, name, route, core, manager)
        request.protocol.set_parser(connection)  # type: ignore[arg-type]  # every read after the upgrade
        request.protocol.keep_alive(False)
        connection.poll_with(request.app[INGEST_POLLER_KEY])
        await connection.serve()  # counts its close code as it is decided
    return response


def _upgrade_headers(accept: str) -> dict[str, str]:
    """The 101 answer to an opening handshake (RFC 6455 4.2.2); no subprotocol or extension."""
    return {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": accept}


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
    """One WebSocket after its upgrade: its frames, its call (from the start message on), its one close.

    aiohttp hands every read after the upgrade to :meth:`feed_data` (its payload-parser
    interface, as for its own WebSocket responses), so each message is handled in the
    transport's callback; :meth:`serve` waits for the end and closes the connection once.
    """

    def __init__(
        self, transport: asyncio.Transport, name: str, route: IngestRoute, core: StreamCore, manager: CallManager
    ) -> None:
        loop = asyncio.get_running_loop()
        self._transport = transport
        self._name = name
        self._route = route
        self._core = core
        self._manager = manager
        self._websocket = ServerConnection(MAX_MESSAGE_BYTES)
        self.session: IngestSession | None = None
        self._loop = loop
        self._closing: asyncio.Future[tuple[int, str]] = loop.create_future()
        self._peer_gone: asyncio.Future[None] = loop.create_future()  # its close frame, or the TCP end
        self._admitting: list[IngestEvent] | None = None  # events that came while the call was admitted
        self._starting: asyncio.Task[None] | None = None
        self._start_timer = loop.call_later(START_TIMEOUT, self._start_overdue)
        self._polled: tuple[GridPoller, socket.socket] | None = None

    def poll_with(self, poller: GridPoller) -> None:
        """Read on the poller's grid instead of at each arrival (plain TCP; TLS stays on its transport)."""
        raw = self._transport.get_extra_info("socket")
        if raw is None or self._transport.get_extra_info("sslcontext") is not None or self._transport.is_closing():
            return
        sock = poller.add(raw.fileno(), self)
        if sock is not None:
            self._transport.pause_reading()
            self._polled = (poller, sock)

    async def serve(self) -> int:
        """Serve until the connection ends; the close code it ended with."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                code, reason = await self._closing
                if self._starting is not None:
                    self._starting.cancel()
        finally:
            self._start_timer.cancel()
        # Counted when decided, before the close handshake: a client that drops the connection at our
        # close frame may ask for the metrics before the handshake's end is read.
        self._manager.services.ingest_stats.closed[(self._name, self._route.protocol, code)] += 1
        try:
            await self._close_transport(code, reason)
        finally:
            if self._polled is not None:
                self._polled[0].remove(self._polled[1])
        if self.session is None:
            log.info("ingest route %s: closed %d before any call (%s)", self._name, code, reason)
        return code

    def close(self, code: int, reason: str) -> None:
        """Close the connection with ``code`` (once; the first reason wins)."""
        if not self._closing.done():
            self._closing.set_result((code, reason))

    async def _close_transport(self, code: int, reason: str) -> None:
        """Our close frame, the client's within CLOSE_TIMEOUT, then the TCP close (RFC 6455 7.1.1)."""
        if not self._peer_gone.done():  # else the client's close was answered as it came, or TCP ended
            self._websocket.close(code, reason)
            self._flush()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await asyncio.shield(self._peer_gone)
        self._transport.close()

    # -- aiohttp's payload-parser interface --------------------------------------------

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        """One read from the connection: not at its end, nothing left over."""
        try:
            for message in self._websocket.receive_data(data):
                self._receive(message)
        except Exception as exc:  # a defect must cost one connection, not the daemon
            log.exception("ingest route %s: internal error", self._name)
            self._end(CallState.FAILED, f"internal error: {type(exc).__name__}", INTERNAL_ERROR)
        self._flush()
        return False, b""

    def feed_eof(self) -> None:
        """The TCP connection ended."""
        self._peer_closed()
        if not self._closing.done():
            self._end(CallState.FAILED, "the connection was torn down (1006) without a stop message", 1006)

    def _peer_closed(self) -> None:
        if not self._peer_gone.done():
            self._peer_gone.set_result(None)

    def _flush(self) -> None:
        data = self._websocket.data_to_send()
        if not data or self._transport.is_closing():
            return
        if self._transport.get_write_buffer_size() > WRITE_BACKLOG_BYTES:  # pings answered, pongs never read
            self._transport.abort()
            self._end(CallState.FAILED, "the sender does not read what we send (our pongs piled up)", 1008)
            return
        self._transport.write(data)

    # -- messages -------------------------------------------------------------------

    def _receive(self, message: WebSocketEvent) -> None:
        if isinstance(message, TextReceived):
            self._dispatch(self._core.receive_text(message.text, self._loop.time()))
        elif isinstance(message, BinaryReceived):
            self._dispatch(self._core.receive_binary())
        elif isinstance(message, CloseReceived):
            self._peer_closed()
            self._closed_by_peer(message.code)
        else:
            self._dispatch([Violation(message.code, message.reason)])

    def _dispatch(self, events: list[IngestEvent]) -> None:
        for event in events:
            if self._admitting is not None:  # the start message is being admitted: keep order
                if len(self._admitting) < ADMITTING_EVENTS:
                    self._admitting.append(event)
            elif isinstance(event, StreamStarted):
                self._start_timer.cancel()
                self._admitting = []
                self._starting = self._group.create_task(self._start(event))
            else:
                self._handle(event)

    def _start_overdue(self) -> None:
        if self._core.started is None:
            self._end(CallState.FAILED, f"no start message within {START_TIMEOUT:g} s", POLICY_VIOLATION)

    def _end(self, state: CallState, reason: str, code: int) -> None:
        if self.session is not None:
            self.session.ended(state, reason)
        self.close(code, reason)

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
        """Admit the call (claimed across the cluster first, [cluster]), then the events held meanwhile."""
        try:
            session = await self._admit(started)
        except Exception as exc:  # a defect must cost one connection, not the daemon
            log.exception("ingest route %s: internal error", self._name)
            return self._end(CallState.FAILED, f"internal error: {type(exc).__name__}", INTERNAL_ERROR)
        held, self._admitting = self._admitting or [], None
        if session is not None:
            self.session = session
            log.info("ingest route %s: call %s started (%s)", self._name, call_id_of(started), self._route.protocol)
            self._dispatch(held)
            self._flush()

    async def _admit(self, started: StreamStarted) -> IngestSession | None:
        config = self._manager.services.config
        try:
            spec = ingest_spec(self._name, self._route, started, config, self._manager.services.slate_images)
            source = IngestSource(self._name, self._route.protocol, started.platform_id, started.tracks)
            factory = IngestSession.factory(source, StreamFeed(started.encoding, started.rate), self.close)
            session = await self._manager.admit(spec, factory)
        except (SpecError, DuplicateCall) as exc:
            self._end(CallState.FAILED, str(exc), POLICY_VIOLATION)
            return None
        except AtCapacity as exc:
            self._end(CallState.FAILED, str(exc), TRY_AGAIN_LATER)
            return None
        assert isinstance(session, IngestSession)
        return session

    def _closed_by_peer(self, code: int) -> None:
        """The sender closed the connection without a stop message (RFC 6455 7.1.5, 7.4.1)."""
        if code in _CLEAN_CLOSES:
            self._end(CallState.FINISH, f"the sender closed the connection ({code}) without a stop message", code)
        else:
            self._end(CallState.FAILED, f"the connection was torn down ({code}) without a stop message", code)


def add_ingest_routes(app: web.Application) -> None:
    app[INGEST_POLLER_KEY] = poller = GridPoller()
    app.router.add_get("/ingest/{route}", ingest)

    async def close_poller(_: web.Application) -> None:
        poller.close()

    app.on_cleanup.append(close_poller)
