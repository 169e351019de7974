"""Client and server transactions, RFC 3261 section 17 (sans-IO).

Over UDP requests and responses are retransmitted; over TCP/TLS they are not
(sections 17.1.1.2, 17.1.2.2) and the wait states D, K and J last zero seconds.

A transaction is fed responses/requests and ``now``; it queues datagrams in
``outbox`` and exposes its next deadline through :meth:`get_timer`.
"""

from __future__ import annotations

from enum import Enum

from sipmessage import Address, CSeq, Request, Response

from bridge.sip.addressing import Destination
from bridge.sip.message import branch_of, serialize
from bridge.sip.timers import TimerSettings


class TransactionState(Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class ClientTransaction:
    """INVITE (17.1.1, with RFC 6026's Accepted state) and non-INVITE (17.1.2) clients."""

    def __init__(self, request: Request, destination: Destination, now: float, timers: TimerSettings) -> None:
        self.request = request
        self.destination = destination
        self.branch = branch_of(request)
        self.method = request.method
        self.is_invite = request.method == "INVITE"
        self.timers = timers
        self.state = TransactionState.CALLING if self.is_invite else TransactionState.TRYING
        self.timed_out = False
        self.transport_failed = False
        self.reliable = destination.transport.reliable
        self.outbox: list[tuple[bytes, Destination]] = []
        self._request_bytes = serialize(request)
        self._ack_bytes: bytes | None = None
        self._interval = timers.t1
        self._retransmit_at: float | None = None if self.reliable else now + timers.t1
        self._deadline: float | None = now + timers.transaction_timeout
        self.outbox.append((self._request_bytes, destination))

    @property
    def terminated(self) -> bool:
        return self.state is TransactionState.TERMINATED

    def get_timer(self) -> float | None:
        """The earliest pending deadline, or None."""
        candidates = [t for t in (self._retransmit_at, self._deadline) if t is not None]
        return min(candidates) if candidates else None

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now`` (A/E retransmit, B/F timeout, D/K/M end)."""
        if self._deadline is not None and now >= self._deadline:
            if self.state in (TransactionState.CALLING, TransactionState.TRYING, TransactionState.PROCEEDING):
                self.timed_out = True
            self._terminate()
            return
        if self._retransmit_at is not None and now >= self._retransmit_at:
            self.outbox.append((self._request_bytes, self.destination))
            if self.is_invite:
                self._interval *= 2
            elif self.state is TransactionState.PROCEEDING:
                self._interval = self.timers.t2
            else:
                self._interval = min(self._interval * 2, self.timers.t2)
            self._retransmit_at = now + self._interval

    def receive_response(self, response: Response, now: float) -> Response | None:
        """Process a matching response; return it if the transaction user must see it."""
        if self.state in (TransactionState.COMPLETED, TransactionState.TERMINATED):
            if self._ack_bytes is not None and response.code >= 300:
                self.outbox.append((self._ack_bytes, self.destination))
            return None
        if self.state is TransactionState.ACCEPTED:
            # RFC 6026 section 8.4: pass 2xx retransmissions up, Timer M keeps running.
            return response if 200 <= response.code < 300 else None
        if response.code < 200:
            return self._on_provisional(response)
        if self.is_invite:
            return self._on_invite_final(response, now)
        self.state = TransactionState.COMPLETED
        self._retransmit_at = None
        self._deadline = now + (0.0 if self.reliable else self.timers.t4)  # Timer K
        return response

    def _on_provisional(self, response: Response) -> Response | None:
        self.state = TransactionState.PROCEEDING
        if self.is_invite:
            self._retransmit_at = None
            self._deadline = None  # Timer B only runs in Calling
        return response

    def _on_invite_final(self, response: Response, now: float) -> Response | None:
        self._retransmit_at = None
        if 200 <= response.code < 300:
            # RFC 6026 section 7.2: Accepted, Timer M; 2xx retransmissions go to the TU.
            self.state = TransactionState.ACCEPTED
            self._deadline = now + self.timers.transaction_timeout
            return response
        self._ack_bytes = serialize(build_non_2xx_ack(self.request, response))
        self.outbox.append((self._ack_bytes, self.destination))
        self.state = TransactionState.COMPLETED
        self._deadline = now + (0.0 if self.reliable else 32.0)  # Timer D, at least 32 s over UDP
        return response

    def fail_transport(self) -> None:
        """The connection to the destination failed (section 8.1.3.1: act as if 503 arrived)."""
        if self.state in (TransactionState.CALLING, TransactionState.TRYING, TransactionState.PROCEEDING):
            self.timed_out = self.transport_failed = True
        self._terminate()

    def _terminate(self) -> None:
        self.state = TransactionState.TERMINATED
        self._retransmit_at = None
        self._deadline = None


def mirror_invite(invite: Request, method: str, to: Address) -> Request:
    """A request in the INVITE's transaction: same Request-URI, top Via, From, Call-ID,
    CSeq number and Route (ACK for non-2xx, section 17.1.1.3; CANCEL, section 9.1)."""
    request = Request(method, invite.uri)
    request.via = invite.via[:1]
    request.max_forwards = 70
    request.from_address = invite.from_address
    request.to_address = to
    request.call_id = invite.call_id
    request.cseq = CSeq(sequence=invite.cseq.sequence, method=method)
    if invite.route:
        request.route = invite.route
    return request


def build_non_2xx_ack(invite: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 3xx-6xx: To carries the response's tag."""
    return mirror_invite(invite, "ACK", response.to_address)


class ServerTransaction:
    """Non-INVITE server transaction, section 17.2.2: absorbs retransmitted requests."""

    def __init__(self, request: Request, source: Destination, now: float, timers: TimerSettings) -> None:
        self.request = request
        self.source = source
        self.key = server_key(request)
        self.timers = timers
        self.state = TransactionState.TRYING
        self.outbox: list[tuple[bytes, Destination]] = []
        self._last_response: bytes | None = None
        self._deadline: float | None = now + timers.transaction_timeout

    @property
    def terminated(self) -> bool:
        return self.state is TransactionState.TERMINATED

    def get_timer(self) -> float | None:
        return self._deadline

    def handle_timer(self, now: float) -> None:
        if self._deadline is not None and now >= self._deadline:
            self.state = TransactionState.TERMINATED
            self._deadline = None

    def respond(self, response: Response, now: float) -> None:
        """Send the transaction user's response; a final one starts Timer J."""
        self._last_response = serialize(response)
        self.outbox.append((self._last_response, self.source))
        if response.code >= 200:
            self.state = TransactionState.COMPLETED
            reliable = self.source.transport.reliable
            self._deadline = now + (0.0 if reliable else self.timers.transaction_timeout)  # Timer J

    def receive_retransmission(self) -> None:
        """A retransmitted request: resend the last response, if any."""
        if self._last_response is not None:
            self.outbox.append((self._last_response, self.source))


def server_key(request: Request) -> tuple[str, str, str]:
    """Matching key of section 17.2.3: branch, sent-by and method (ACK maps to INVITE)."""
    via = request.via[0]
    sent_by = f"{via.host}:{via.port or 5060}"
    method = "INVITE" if request.method == "ACK" else request.method
    return (branch_of(request), sent_by, method)
