"""The SIP user agent core: dispatches datagrams to calls and transactions (sans-IO).

RFC 3261 sections 8.2 (UAS behaviour for stray requests), 17.1.3 and 17.2.3
(transaction matching), 18.1.2/18.2.2 (responses are sent back to the source
address, which is what ``rport`` of RFC 3581 asks for).
"""

from __future__ import annotations

import re

from sipmessage import Request, Response

from bridge.sip.addressing import Destination
from bridge.sip.call import ALLOW, OutboundCall
from bridge.sip.events import CallEvent
from bridge.sip.inbound import OVERSIZED, STRAY_RESPONSE, UNKNOWN_SOURCE, UNPARSABLE, InboundPolicy
from bridge.sip.message import SipParseError, build_response, new_tag, parse_message, serialize
from bridge.sip.registration import Registration, RegistrationEvent
from bridge.sip.timers import TimerSettings
from bridge.sip.transaction import ServerTransaction, server_key

_CALL_ID = re.compile(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


class SipAgent:
    """Holds the active calls and the server transactions for requests we receive."""

    def __init__(self, timers: TimerSettings | None = None, policy: InboundPolicy | None = None) -> None:
        self.timers = timers or TimerSettings()
        self.policy = policy or InboundPolicy()
        self.calls: dict[str, OutboundCall] = {}
        self.outbox: list[tuple[bytes, Destination]] = []
        self.events: list[tuple[str, CallEvent | RegistrationEvent]] = []
        self.registrations: dict[str, Registration] = {}
        self._servers: dict[tuple[str, str, str], ServerTransaction] = {}
        self._known_cache: tuple[float, set[str]] | None = None  # forgotten whenever a call changes

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

    def receive_datagram(self, data: bytes, source: Destination, now: float) -> bool:
        """Handle one UDP datagram or stream message; never raises for bad input.

        False when it was dropped (too large, unparsable, or for none of our calls and not
        answered): a stranger's TCP connection is closed on that (bridge.sip.connections).
        """
        if not data.strip():
            return True  # RFC 5626 keep-alive (CRLF)
        if len(data) > self.policy.max_message_bytes:
            self.policy.drop(OVERSIZED, source.host)
            return False
        if (
            not self._ours(data)
            and self.policy.mode == "drop"
            and not self.policy.is_trusted(source.host, self._known(now))
        ):
            self.policy.drop(UNKNOWN_SOURCE, source.host)  # not even parsed: a flood costs next to nothing
            return False
        try:
            message = parse_message(data)
        except SipParseError:
            self.policy.drop(UNPARSABLE, source.host)
            return False
        if isinstance(message, Response):
            return self._on_response(message, source, now)
        return self._on_request(message, source, now)

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

    def _on_response(self, response: Response, source: Destination, now: float) -> bool:
        registration = self.registrations.get(response.call_id)
        if registration is not None:
            registration.receive_response(response, now)
            self._collect_registration(registration)
            return True
        call = self.calls.get(response.call_id)
        if call is None:
            self.policy.drop(STRAY_RESPONSE, source.host)
            return False
        call.receive_response(response, now)
        self._collect(call)
        return True

    def _on_request(self, request: Request, source: Destination, now: float) -> bool:
        call = self.calls.get(request.call_id)
        if call is None:
            return self._out_of_dialog(request, source, now)
        key = server_key(request)
        existing = self._servers.get(key)
        if existing is not None and request.method != "ACK":
            existing.receive_retransmission()
            self.outbox.extend(existing.outbox)
            existing.outbox.clear()
            return True
        response = call.receive_request(request, source, now)
        self._collect(call)
        if response is None:
            return True
        server = ServerTransaction(request, source, now, self.timers)
        server.respond(response, now)
        self._servers[key] = server
        self.outbox.extend(server.outbox)
        server.outbox.clear()
        return True

    def _out_of_dialog(self, request: Request, source: Destination, now: float) -> bool:
        """A request for no call of ours: dropped, or answered statelessly (bridge.sip.inbound)."""
        if request.method == "ACK" or not self.policy.may_answer(source.host, self._known(now), now):
            return False
        response = self._stray_response(request)
        self.outbox.append((serialize(response), source))
        return True

    def known_hosts(self) -> set[str]:
        """Where our calls' and registrations' traffic comes from: their SIP domains (and alternates),
        and each dialog's remote target and route set (a far end that sends its BYE directly)."""
        hosts = set()
        for call in self.calls.values():
            hosts |= {d.host for d in (call.settings.destination, *call.settings.alternates)}
            dialog = call.dialog
            hosts |= {dialog.remote_target.host, *(route.uri.host for route in dialog.route_set)}
        hosts |= {registration.settings.destination.host for registration in self.registrations.values()}
        return {host.strip("[]") for host in hosts if host}

    def _ours(self, data: bytes) -> bool:
        """Whether the datagram's Call-ID is one of our calls' or registrations' (read without parsing the
        message: in-dialog traffic is accepted from any address, as providers send it from several)."""
        match = _CALL_ID.search(data, 0, data.find(b"\r\n\r\n"))
        if match is None:
            return False
        call_id = match[1].decode("utf-8", "replace")
        return call_id in self.calls or call_id in self.registrations

    def _known(self, now: float) -> set[str]:
        """:meth:`known_hosts`, recomputed when calls come or go and at most once a second otherwise."""
        if self._known_cache is None or now - self._known_cache[0] >= 1.0:
            self._known_cache = (now, self.known_hosts())
        return self._known_cache[1]

    @staticmethod
    def _stray_response(request: Request) -> Response:
        """RFC 3261 §8.2: OPTIONS 200 with Allow; in-dialog 481; INVITE 403; anything else 405."""
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
        self._known_cache = None
        self.outbox.extend(call.outbox)
        call.outbox.clear()
        self.events.extend((call.call_id, event) for event in call.events)
        call.events.clear()
        if call.finished:
            del self.calls[call.call_id]

    def _collect_registration(self, registration: Registration) -> None:
        self._known_cache = None
        self.outbox.extend(registration.outbox)
        registration.outbox.clear()
        self.events.extend((registration.call_id, event) for event in registration.events)
        registration.events.clear()
        if registration.finished:
            del self.registrations[registration.call_id]
