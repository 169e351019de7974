"""The SIP user agent core: dispatches datagrams to calls and transactions (sans-IO).

RFC 3261 sections 8.2 (UAS behaviour for stray requests), 17.1.3 and 17.2.3
(transaction matching), 18.1.2/18.2.2 (responses are sent back to the source
address, which is what ``rport`` of RFC 3581 asks for).
"""

from __future__ import annotations

from dataclasses import dataclass

from sipmessage import Request, Response

from bridge.sip.addressing import Destination
from bridge.sip.call import ALLOW, OutboundCall
from bridge.sip.events import CallEvent
from bridge.sip.message import SipParseError, build_response, new_tag, parse_message
from bridge.sip.registration import Registration, RegistrationEvent
from bridge.sip.timers import TimerSettings
from bridge.sip.transaction import ServerTransaction, server_key


@dataclass(frozen=True, slots=True)
class MessageDropped:
    """A datagram that was not valid SIP, or matched nothing; for logs and counters."""

    source: Destination
    reason: str


class SipAgent:
    """Holds the active calls and the server transactions for requests we receive."""

    def __init__(self, timers: TimerSettings | None = None) -> None:
        self.timers = timers or TimerSettings()
        self.calls: dict[str, OutboundCall] = {}
        self.outbox: list[tuple[bytes, Destination]] = []
        self.events: list[tuple[str, CallEvent | RegistrationEvent]] = []
        self.registrations: dict[str, Registration] = {}
        self.dropped: list[MessageDropped] = []
        self._servers: dict[tuple[str, str, str], ServerTransaction] = {}

    def add_call(self, call: OutboundCall, now: float) -> None:
        """Start ``call`` (sends its INVITE)."""
        self.calls[call.call_id] = call
        call.start(now)
        self._collect(call)

    def add_registration(self, registration: Registration, now: float) -> None:
        """Start registering (sends the REGISTER)."""
        self.registrations[registration.call_id] = registration
        registration.start(now)
        self._collect_registration(registration)

    def unregister(self, call_id: str, now: float) -> None:
        registration = self.registrations.get(call_id)
        if registration is not None:
            registration.unregister(now)
            self._collect_registration(registration)

    def transport_failed(self, destination: Destination, now: float) -> None:
        """A TCP/TLS connection could not be opened or broke: fail what was waiting on it."""
        for call in list(self.calls.values()):
            call.transport_failed(destination, now)
            self._collect(call)
        for registration in list(self.registrations.values()):
            registration.transport_failed(destination, now)
            self._collect_registration(registration)

    def hangup(self, call_id: str, now: float) -> None:
        call = self.calls.get(call_id)
        if call is not None:
            call.hangup(now)
            self._collect(call)

    def send_info(self, call_id: str, content_type: str, body: bytes, now: float) -> bool:
        """An INFO in the call's dialog (see :meth:`OutboundCall.send_info`)."""
        call = self.calls.get(call_id)
        sent = call is not None and call.send_info(content_type, body, now)
        if call is not None:
            self._collect(call)
        return sent

    def receive_datagram(self, data: bytes, source: Destination, now: float) -> None:
        """Handle one UDP datagram; never raises for bad input."""
        if not data.strip():
            return  # RFC 5626 keep-alive (CRLF)
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self.dropped.append(MessageDropped(source, f"unparsable SIP: {exc}"))
            return
        if isinstance(message, Response):
            self._on_response(message, source, now)
        else:
            self._on_request(message, source, now)

    def get_timer(self) -> float | None:
        deadlines = [c.get_timer() for c in self.calls.values()]
        deadlines += [r.get_timer() for r in self.registrations.values()]
        deadlines += [s.get_timer() for s in self._servers.values()]
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def handle_timer(self, now: float) -> None:
        for call in list(self.calls.values()):
            deadline = call.get_timer()
            if deadline is not None and now >= deadline:
                call.handle_timer(now)
                self._collect(call)
        for registration in list(self.registrations.values()):
            deadline = registration.get_timer()
            if deadline is not None and now >= deadline:
                registration.handle_timer(now)
                self._collect_registration(registration)
        for key, server in list(self._servers.items()):
            server.handle_timer(now)
            if server.terminated:
                del self._servers[key]

    def _on_response(self, response: Response, source: Destination, now: float) -> None:
        registration = self.registrations.get(response.call_id)
        if registration is not None:
            registration.receive_response(response, now)
            self._collect_registration(registration)
            return
        call = self.calls.get(response.call_id)
        if call is None:
            self.dropped.append(MessageDropped(source, f"response {response.code} for unknown call"))
            return
        call.receive_response(response, now)
        self._collect(call)

    def _on_request(self, request: Request, source: Destination, now: float) -> None:
        key = server_key(request)
        existing = self._servers.get(key)
        if existing is not None and request.method != "ACK":
            existing.receive_retransmission()
            self.outbox.extend(existing.outbox)
            existing.outbox.clear()
            return
        response = self._respond_to(request, source, now)
        if response is None:
            return
        server = ServerTransaction(request, source, now, self.timers)
        server.respond(response, now)
        self._servers[key] = server
        self.outbox.extend(server.outbox)
        server.outbox.clear()

    def _respond_to(self, request: Request, source: Destination, now: float) -> Response | None:
        call = self.calls.get(request.call_id)
        if call is not None:
            response = call.receive_request(request, source, now)
            self._collect(call)
            return response
        if request.method == "ACK":
            return None
        if request.method == "OPTIONS":
            response = build_response(request, 200, "OK", to_tag=new_tag())
            response.headers.set("Allow", ALLOW)
            return response
        if "tag" in request.to_address.parameters:
            return build_response(request, 481, "Call/Transaction Does Not Exist", to_tag=new_tag())
        if request.method == "INVITE":
            return build_response(request, 403, "Incoming Calls Not Accepted", to_tag=new_tag())
        response = build_response(request, 405, "Method Not Allowed", to_tag=new_tag())
        response.headers.set("Allow", ALLOW)
        return response

    def _collect(self, call: OutboundCall) -> None:
        self.outbox.extend(call.outbox)
        call.outbox.clear()
        self.events.extend((call.call_id, event) for event in call.events)
        call.events.clear()
        if call.finished:
            del self.calls[call.call_id]

    def _collect_registration(self, registration: Registration) -> None:
        self.outbox.extend(registration.outbox)
        registration.outbox.clear()
        self.events.extend((registration.call_id, event) for event in registration.events)
        registration.events.clear()
        if registration.finished:
            del self.registrations[registration.call_id]
