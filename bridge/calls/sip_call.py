"""One bridged call: SIP call, RTP receive, playout, AAC encode, RTMP publish.

The session is a small state machine driven by an inbox of events (SIP events,
stop requests, media problems). It owns its tasks in a TaskGroup and releases
every resource (RTP ports, RTMP connection, SIP dialog) on the way out.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from bridge.calls.record import BaseSession, MediaFailed, SessionError, StopRequested
from bridge.calls.registration import CallRegistration, RegistrationError
from bridge.calls.services import Services, SignallingUnavailable
from bridge.channel.protocol import KeyframeWanted, MediaReport
from bridge.model import CallSpec, CallState
from bridge.sip.addressing import Destination, Transport
from bridge.sip.call import CallSettings, OutboundCall
from bridge.sip.call_offer import OfferPlan, call_offer
from bridge.sip.digest import Credentials
from bridge.sip.dns import ResolveError
from bridge.sip.events import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallProgress,
    DtmfReceived,
    EndCause,
    MediaChanged,
    ServerFailover,
)
from bridge.sip.message import new_call_id
from bridge.sip.registration import RegistrationEvent
from bridge.sip.sdes import SrtpMode
from bridge.sip.target import TargetError, from_uri, request_uri
from bridge.workers.handle import DtmfUnavailable, MediaHandle
from bridge.workers.pool import WorkerUnavailable
from rtp.codecs import CODECS
from rtp.keyframes import MEDIA_CONTROL_TYPE, picture_fast_update
from rtp.ports import PortsExhausted

BYE_ANSWER_SECONDS = 4.0  # a hang-up's state waits this long for the far end's answer to BYE
log = logging.getLogger("bridge.session")


InboxItem = CallEvent | RegistrationEvent | StopRequested | MediaFailed


class CallSession(BaseSession):
    """Runs one SIP call from PENDING to FINISH or FAILED."""

    def __init__(self, spec: CallSpec, services: Services) -> None:
        super().__init__(spec, services)
        self.sip_call_id = ""
        self._inbox: asyncio.Queue[InboxItem] = asyncio.Queue()
        self._sip_started = False
        self._call: OutboundCall | None = None
        self._registration = CallRegistration(services)
        self._alternates: list[Destination] = []
        self._answered = False
        self._info_requests = 0  # key frame requests sent by SIP INFO (RFC 5168)
        self._sip_over = False

    # -- control --------------------------------------------------------------------

    def terminate(self, reason: str = "terminated by API request") -> None:
        """Ask the session to hang up; it finishes asynchronously."""
        self._inbox.put_nowait(StopRequested(reason))

    expected_errors = (SessionError, ResolveError, TargetError, SignallingUnavailable)

    # -- phases ---------------------------------------------------------------------

    async def _run(self) -> None:
        servers = await self.services.resolve_sip(self.spec.sip_domain, self.spec.sip_port, self._transport())
        destination, self._alternates = servers[0], servers[1:]
        local_host = await self.services.local_address_towards(destination)
        try:
            self.media = await self.services.workers().open(
                self.spec.call_id, self.services.rtp_bind_host, video=self._offers_video()
            )
        except (PortsExhausted, WorkerUnavailable) as exc:
            raise SessionError(str(exc)) from None
        if self.spec.register:
            await self._register(destination, local_host)
        self._place_call(destination, local_host, self.media.port)
        answer = await self._wait_for_answer()
        if answer is not None:
            await self._bridge_media(answer)

    def _uri_port(self, destination: Destination) -> int | None:
        """The port for our Request-URI: the one asked for, unless it is the transport's default."""
        port = self.spec.sip_port
        return None if port is None or port == destination.transport.default_port else port

    def _transport(self) -> Transport:
        """TLS for a sips: callee, else what the request asked for (udp by default)."""
        if self.spec.callee.lower().startswith("sips:"):
            return Transport.TLS
        return Transport(self.spec.sip_transport.upper())

    async def _register(self, destination: Destination, local_host: str) -> None:
        spec = self.spec
        self._set_state(CallState.PENDING, f"registering {spec.sip_login}@{spec.sip_domain}")
        credentials = Credentials(spec.sip_auth_name or spec.sip_login, spec.sip_password)
        local = (local_host, self.services.signalling().local_address[1])
        try:
            expires = await self._registration.register(
                spec.sip_login, spec.sip_domain, spec.sip_port, credentials, destination, local
            )
        except RegistrationError as exc:
            raise SessionError(str(exc)) from None
        self._note("registered", expires=expires)

    def _offers_video(self) -> bool:
        """m=video is offered when h264 is in the codec list."""
        return "h264" in (self.spec.codecs or self.services.config.media.codecs)

    def _codecs(self) -> list[str]:
        """The codecs to offer: the request's or [media] codecs; 8 kHz ones only for G.711 output."""
        names = list(self.spec.codecs or self.services.config.media.codecs)
        if any(d.audio.codec == "pcmu" for d in self.spec.destinations):
            names = [name for name in names if name in CODECS and CODECS[name].audio_rate == 8000] or ["pcmu"]
        return names

    def _place_call(self, destination: Destination, local_host: str, rtp_port: int) -> None:
        spec = self.spec
        mode = SrtpMode(spec.srtp or self.services.config.rtp.srtp)
        plan = OfferPlan(
            local_host,
            rtp_port,
            tuple(self._codecs()),
            sends_media=spec.has_audio or spec.has_video,
            video_port=self.media.video_port if self.media is not None else 0,
            sends_video=spec.has_video,
            srtp=mode,
        )
        offer, cryptos = call_offer(plan, secrets.randbelow(2**31), secrets.token_bytes)
        self.sip_call_id = new_call_id(local_host)
        settings = CallSettings(
            call_id=self.sip_call_id,
            request_uri=request_uri(spec.callee, spec.sip_domain, self._uri_port(destination)),
            from_uri=from_uri(spec.sip_login, spec.sip_domain),
            destination=destination,
            alternates=self._alternates,
            srtp=mode,
            offered_crypto=cryptos,
            local_address=(local_host, self.services.signalling().local_address[1]),
            offer=offer,
            session_expires=self.services.config.sip.session_expires,
            credentials=Credentials(spec.sip_auth_name or spec.sip_login, spec.sip_password),
            user_agent=self.services.config.sip.user_agent,
            answer_timeout=self.services.config.sip.answer_timeout,
            timers=self.services.timers,
        )
        self._call = OutboundCall(settings)
        self.services.signalling().place_call(self._call, self._inbox.put_nowait)
        self._sip_started = True
        self._set_state(CallState.TRYING, f"INVITE sent to {destination}")

    async def _wait_for_answer(self) -> CallAnswered | CallProgress | None:
        """Until answered, or early media starts (if configured), or the call ended (None)."""
        stop_reason: str | None = None
        while True:
            item = await self._inbox.get()
            if isinstance(item, CallProgress):
                state = CallState.SESSION_PROGRESS if item.code == 183 else CallState.RING
                self._set_state(state, f"{item.code} {item.phrase}")
                if item.remote is not None and self.services.config.sip.early_media:
                    self._note("early-media", address=f"{item.remote.address[0]}:{item.remote.address[1]}")
                    return item
            elif isinstance(item, ServerFailover):
                self._set_state(CallState.TRYING, f"INVITE sent to {item.destination} after {item.reason}")
            elif isinstance(item, CallAnswered):
                self._set_state(CallState.ESTABLISHED, f"{item.code} {item.phrase}")
                return item
            elif isinstance(item, CallEnded):
                self._sip_over = True
                self._on_ended_before_answer(item, stop_reason)
                return None
            elif isinstance(item, StopRequested) and stop_reason is None:
                stop_reason = item.reason
                self.services.signalling().hangup(self.sip_call_id)

    def _on_ended_before_answer(self, ended: CallEnded, stop_reason: str | None) -> None:
        if stop_reason is not None and ended.cause in (EndCause.LOCAL_HANGUP, EndCause.CANCELLED):
            self._set_state(CallState.FINISH, stop_reason)
        else:
            state = CallState.BUSY if ended.cause is EndCause.BUSY else CallState.FAILED
            self._set_state(state, f"call not answered: {ended.describe()}")

    async def _bridge_media(self, first: CallAnswered | CallProgress) -> None:
        """Publish from the answer (or from early media, then through the answer) to the end."""
        self._answered = isinstance(first, CallAnswered)
        if first.remote is None:
            self.services.signalling().hangup(self.sip_call_id)
            await self._wait_for_sip_end()
            error = first.error if isinstance(first, CallAnswered) else "no SDP"
            self._set_state(CallState.FAILED, f"unusable SDP answer: {error}")
            return
        assert self.media is not None
        spec = self.spec
        self._note("codec", codec=first.remote.codec, payloadType=first.remote.payload_type)
        if self.media.video_port:
            video = first.remote.video
            self._note(
                "video", state="negotiated" if video else "declined", payloadType=video.payload_type if video else None
            )
        self.media.start(
            first.remote,
            [view.start_message(spec.reveal_stream_names) for view in self.destinations],
            spec.has_audio or spec.has_video,
            spec.secrets(),
            self._on_media_event,
            self._on_stream_state,
            record=self.record_start(),
        )
        async with asyncio.TaskGroup() as group:
            media_task = group.create_task(self._watch_media(self.media))
            final_state, reason = await self._wait_for_end()
            media_task.cancel()
            await self.media.close()
        self._set_state(final_state, reason)

    async def _watch_media(self, media: MediaHandle) -> None:
        self._inbox.put_nowait(MediaFailed(await media.run()))

    async def _wait_for_end(self) -> tuple[CallState, str]:
        """Until the far end hangs up, we are asked to stop, or media fails."""
        while True:
            item = await self._inbox.get()
            if isinstance(item, MediaChanged):
                self._on_media_changed(item)
            elif isinstance(item, DtmfReceived):
                self._note("dtmf", digit=item.digit, durationMs=item.duration_ms, via="INFO")
            elif isinstance(item, CallAnswered) and not self._answered:
                if not self._on_late_answer(item):
                    self.services.signalling().hangup(self.sip_call_id)
                    await self._wait_for_sip_end()
                    return CallState.FAILED, f"unusable SDP answer: {item.error}"
            elif isinstance(item, CallEnded):
                self._sip_over = True
                if not self._answered:
                    return CallState.FAILED, f"call not answered: {item.describe()}"
                state = CallState.FINISH if item.cause is EndCause.REMOTE_HANGUP else CallState.FAILED
                return state, item.describe()
            elif isinstance(item, StopRequested):
                self.services.signalling().hangup(self.sip_call_id)
                await self._wait_for_sip_end(BYE_ANSWER_SECONDS)
                return CallState.FINISH, item.reason
            elif isinstance(item, MediaFailed):
                # The far end may be gone (no RTP): the call ends now; the BYE goes on in the SIP agent
                # (retransmitted until answered or Timer F) without holding the call or its stream.
                self.services.signalling().hangup(self.sip_call_id)
                return CallState.FAILED, item.reason

    async def _wait_for_sip_end(self, timeout: float = 35.0) -> None:
        """Wait for the BYE/CANCEL outcome (bounded: Timer F is 32 s; a hang-up waits BYE_ANSWER_SECONDS,
        then the agent goes on retransmitting without the session)."""
        try:
            async with asyncio.timeout(timeout):
                while not self._sip_over:
                    item = await self._inbox.get()
                    self._sip_over = isinstance(item, CallEnded)
        except TimeoutError:
            log.warning("call %s: no final answer to our hangup", self.spec.call_id)

    def _on_late_answer(self, answered: CallAnswered) -> bool:
        """The 2xx after early media: same stream, possibly a new address or keys."""
        self._answered = True
        if answered.remote is None:
            return False
        self._set_state(CallState.ESTABLISHED, f"{answered.code} {answered.phrase}")
        self._on_media_changed(MediaChanged(answered.remote))
        return True

    def _on_media_changed(self, change: MediaChanged) -> None:
        """Hold, resume or a new RTP address from a re-INVITE/UPDATE (RFC 3264 section 8.4)."""
        peer = change.peer
        held = self.media.update(peer) if self.media is not None else False
        self._note("media", address=f"{peer.address[0]}:{peer.address[1]}", direction=peer.direction)
        if held and self.state is CallState.ESTABLISHED:
            self._set_state(CallState.HOLD, f"held by the far end ({peer.direction})")
        elif not held and self.state is CallState.HOLD:
            self._set_state(CallState.ESTABLISHED, f"resumed by the far end ({peer.direction})")

    def _on_media_event(self, event: MediaReport) -> None:
        """What the media worker reports; a key frame it wants is asked for by SIP INFO, noted once."""
        if not isinstance(event, KeyframeWanted):
            super()._on_media_event(event)
            return
        first = not self._info_requests
        self._info_requests += self.services.signalling().send_info(
            self.sip_call_id, MEDIA_CONTROL_TYPE, picture_fast_update()
        )
        if first and self._info_requests:
            self._note("keyframe-request", via="INFO")

    def sip_ladder(self) -> list[dict[str, str | float]]:
        """The call's SIP messages with wall-clock times (seconds since the epoch)."""
        if self._call is None:
            return []
        offset = time.time() - asyncio.get_running_loop().time()
        return [entry.to_json(offset) for entry in self._call.dialog.ladder.entries]

    async def _release(self) -> None:
        if self._sip_started and not self._sip_over:
            self.services.signalling().hangup(self.sip_call_id)
        if self.media is not None:
            await self.media.close()
        if self.sip_call_id:
            self.services.signalling().forget(self.sip_call_id)
        await self._registration.unregister()

    # -- reporting ------------------------------------------------------------------

    def send_dtmf(self, digits: str, duration_ms: int) -> None:
        """Queue RFC 4733 digits; raises DtmfUnavailable (not answered, receive-only, ...)."""
        if self.media is None or not self.media.started or self.state not in (CallState.ESTABLISHED, CallState.HOLD):
            raise DtmfUnavailable(f"the call is {self.state.value}, not ESTABLISHED")
        self.media.send_dtmf(digits, duration_ms)
        self._note("dtmf-sent", digits=digits, durationMs=duration_ms)

    def source_label(self) -> str:
        return "sip"

    def identity(self) -> dict[str, Any]:
        return {
            "sipDomain": self.spec.sip_domain,
            "sipCallId": self.sip_call_id,
            "sipLadder": self.sip_ladder(),
            "source": {"kind": "sip"},
        }
