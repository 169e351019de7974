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
from bridge.ingest.config import IngestRoute
from bridge.ingest.session import IngestSession
from bridge.ingest.signature import token_valid, twilio_signature_valid
from bridge.ingest.spec import IngestSource, SpecError, call_id_of, ingest_spec
from bridge.ingest.stats import UNKNOWN_ROUTE
from bridge.model import CallState
from bridge.net.connlimit import Throttle
from bridge.net.grid_poller import GridPoller
from bridge.workers.handle import MediaHandle
from bridge.wsmedia.core import StreamCore
from bridge.wsmedia.events import INTERNAL_ERROR, POLICY_VIOLATION, TRY_AGAIN_LATER, DigitReceived, StreamStarted
from bridge.wsmedia.platforms import CORES
from bridge.wsmedia.stream import MediaStream, StreamAudio, StreamEnded, StreamEvent, TrackAppeared
from bridge.wsmedia.websocket import HandshakeError, accept_key
from rest.common import MANAGER_KEY
from rest.errors import error_response
from rest.streams import STREAM_LIMITS_KEY

REFUSAL_LOG = Throttle(60.0)
log = logging.getLogger("bridge.ingest")
INGEST_POLLER_KEY = web.AppKey("ingest_poller", GridPoller)
START_TIMEOUT = 10.0  # seconds from the upgrade to the stream's start message
CLOSE_TIMEOUT = 2.0  # seconds for the client's close frame after ours
WRITE_BACKLOG_BYTES = 256 * 1024  # our unread pongs and close frame a sender may leave us holding
ADMITTING_EVENTS = 500  # events held while the call is admitted (10 s of one track's media)


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
    """One WebSocket after its upgrade: its stream, its call (from the start message on), its one close.

    aiohttp hands every read after the upgrade to :meth:`feed_data` (its payload-parser
    interface, as for its own WebSocket responses), so each message is handled in the
    transport's callback; :meth:`serve` waits for the end and closes the connection once.
    Once the call's media runs, a plain-TCP connection is handed to the call's media worker
    (:meth:`media_started`): from then on the worker reads, answers and closes it, and tells
    the session a digit, a new track or the end.
    """

    def __init__(
        self, transport: asyncio.Transport, name: str, route: IngestRoute, core: StreamCore, manager: CallManager
    ) -> None:
        loop = asyncio.get_running_loop()
        self._transport = transport
        self._name = name
        self._route = route
        self._stream = MediaStream(core)
        self._manager = manager
        self.session: IngestSession | None = None
        self._loop = loop
        self._closing: asyncio.Future[tuple[int, str]] = loop.create_future()
        self._peer_gone: asyncio.Future[None] = loop.create_future()  # its close frame, the TCP end, the worker's word
        self._admitting: list[StreamEvent] | None = None  # events that came while the call was admitted
        self._starting: asyncio.Task[None] | None = None
        self._start_timer = loop.call_later(START_TIMEOUT, self._start_overdue)
        self._polled: tuple[GridPoller, socket.socket] | None = None
        self._media: MediaHandle | None = None  # the call's media, once it runs
        self._adopted = False  # the media worker reads the connection

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
            self._stop_polling()
        if self.session is None:
            log.info("ingest route %s: closed %d before any call (%s)", self._name, code, reason)
        return code

    def close(self, code: int, reason: str) -> None:
        """Close the connection with ``code`` (once; the first reason wins)."""
        if self._closing.done():
            return
        self._closing.set_result((code, reason))
        if self._adopted and not self._peer_gone.done() and self._media is not None:
            self._media.close_stream(code, reason)  # the worker closes it and says so (StreamClosed)

    async def _close_transport(self, code: int, reason: str) -> None:
        """Our close frame, the client's within CLOSE_TIMEOUT, then the TCP close (RFC 6455 7.1.1).

        A connection the media worker reads is closed there; the daemon closes its own copy of
        the socket once the worker has its end. If the worker died (or does not answer), the
        daemon sends the close frame itself and closes without waiting.
        """
        if self._peer_gone.done():  # the client's close was answered, TCP ended, or the worker has it
            self._transport.close()
            return
        if not self._adopted:
            self._stream.close(code, reason)  # the end is decided: its event is not needed
            self._flush()
        elif self._media is None or self._media.lost_reason:  # the worker died: the daemon answers
            self._take_back(code, reason)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.shield(self._peer_gone)
        if self._adopted and not self._peer_gone.done() and not self._stream.websocket.close_sent:
            self._take_back(code, reason)  # the worker did not answer in time
        self._transport.close()

    def _take_back(self, code: int, reason: str) -> None:
        """Close a connection the worker read from here: our close frame, then the daemon reads
        again until the sender's end (its bytes are not parsed any more: the worker had the stream)."""
        self._stream.websocket.close(code, reason)
        self._stream.websocket.ignore_input()  # what matters from now on is the sender's end
        self._flush()
        if not self._transport.is_closing():
            self._transport.resume_reading()

    def _stop_polling(self) -> None:
        if self._polled is not None:
            self._polled[0].remove(self._polled[1])
            self._polled = None

    # -- aiohttp's payload-parser interface, and the grid poller's --------------------

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        """One read from the connection: not at its end, nothing left over."""
        try:
            self._dispatch(self._stream.receive_data(data, self._loop.time()))
        except Exception as exc:  # a defect must cost one connection, not the daemon
            log.exception("ingest route %s: internal error", self._name)
            self._end(CallState.FAILED, f"internal error: {type(exc).__name__}", INTERNAL_ERROR)
        self._flush()
        self._hand_over()
        return False, b""

    def feed_eof(self) -> None:
        """The TCP connection ended."""
        self._dispatch(self._stream.receive_eof())

    def _flush(self) -> None:
        if self._admitting is not None and self._stream.ended is not None and not self._stream.peer_gone:
            return  # the end waits for the call's admission, so the call exists when the sender hears of it
        data = self._stream.data_to_send()
        if not data or self._transport.is_closing():
            return
        if self._transport.get_write_buffer_size() > WRITE_BACKLOG_BYTES:  # pings answered, pongs never read
            self._transport.abort()
            self._end(CallState.FAILED, "the sender does not read what we send (our pongs piled up)", 1008)
            return
        self._transport.write(data)

    # -- events -----------------------------------------------------------------------

    def _dispatch(self, events: list[StreamEvent]) -> None:
        for event in events:
            if self._admitting is not None and not (isinstance(event, StreamEnded) and self._stream.peer_gone):
                if len(self._admitting) < ADMITTING_EVENTS:  # kept in order while the call is admitted
                    self._admitting.append(event)
                else:
                    self._manager.services.ingest_stats.dropped_before_media[(self._name, self._route.protocol)] += 1
            elif isinstance(event, StreamStarted):
                self._start_timer.cancel()
                self._admitting = []
                self._starting = self._group.create_task(self._start(event))
            else:
                self._handle(event)
        if self._stream.peer_gone:
            self._peer_closed()

    def _handle(self, event: StreamEvent) -> None:
        session = self.session
        if isinstance(event, StreamAudio):
            if session is not None:
                session.audio(event.track, event.timestamp, event.payload)
        elif isinstance(event, TrackAppeared):
            if session is not None:
                session.track_appeared(event.index, event.name)
        elif isinstance(event, DigitReceived):
            if session is not None:
                session.digit(event.digit, event.track)
        elif isinstance(event, StreamEnded):
            self._end(CallState.FINISH if event.finished else CallState.FAILED, event.reason, event.code)

    def _peer_closed(self) -> None:
        if not self._peer_gone.done():
            self._peer_gone.set_result(None)

    def _start_overdue(self) -> None:
        if self._stream.core.started is None:
            self._end(CallState.FAILED, f"no start message within {START_TIMEOUT:g} s", POLICY_VIOLATION)

    def _end(self, state: CallState, reason: str, code: int) -> None:
        if self.session is not None:
            self.session.ended(state, reason)
        self.close(code, reason)

    # -- admission and the handover ---------------------------------------------------

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
            self._hand_over()

    async def _admit(self, started: StreamStarted) -> IngestSession | None:
        config = self._manager.services.config
        try:
            spec = ingest_spec(self._name, self._route, started, config, self._manager.services.slate_images)
            source = IngestSource(self._name, self._route.protocol, started.platform_id, started.tracks)
            factory = IngestSession.factory(source, started, self)
            session = await self._manager.admit(spec, factory)
        except (SpecError, DuplicateCall) as exc:
            self._end(CallState.FAILED, str(exc), POLICY_VIOLATION)
            return None
        except AtCapacity as exc:
            self._end(CallState.FAILED, str(exc), TRY_AGAIN_LATER)
            return None
        assert isinstance(session, IngestSession)
        return session

    def media_started(self, media: MediaHandle) -> None:
        """The call's media runs in a worker: hand it the connection as soon as it can change hands."""
        self._media = media
        self._hand_over()

    def stream_closed(self, code: int, reason: str, finished: bool) -> None:
        """The worker ended the adopted stream (it answers and closes the connection)."""
        self._peer_closed()
        self._end(CallState.FINISH if finished else CallState.FAILED, reason, code)

    def _hand_over(self) -> None:
        """Pass the connection to the call's media worker, at a message boundary with nothing to write."""
        if self._adopted or self._media is None or self._admitting is not None or self._closing.done():
            return

        if self._polled is None or self._transport.get_write_buffer_size():
            return  # TLS, or our pongs still going out: the daemon reads it (and tries again with the next read)
        handover = self._stream.handover()
        if handover is None or not self._media.adopt_stream(self._polled[1].fileno(), handover):
            return
        self._adopted = True
        self._stop_polling()


def add_ingest_routes(app: web.Application) -> None:
    app[INGEST_POLLER_KEY] = poller = GridPoller()
    app.router.add_get("/ingest/{route}", ingest)

    async def close_poller(_: web.Application) -> None:
        poller.close()

    app.on_cleanup.append(close_poller)
