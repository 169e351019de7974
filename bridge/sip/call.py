"""An outbound call: the UAC side of an INVITE dialog (sans-IO).

RFC 3261 sections 8.1 (requests), 12 (dialogs), 13.2 (INVITE client), 9.1
(CANCEL), 15.1.1 (BYE), 22.2 (retrying with credentials) and 17.1.1.3 via
:mod:`bridge.sip.transaction` for ACKs of non-2xx answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from sipmessage import URI, Address, AuthChallenge, CSeq, Parameters, Request, Response, Via

from bridge.sip.digest import Credentials, DigestClient, DigestError, strongest_challenge
from bridge.sip.events import CallAnswered, CallEnded, CallEvent, CallProgress, EndCause, cause_for_status
from bridge.sip.message import branch_of, build_response, new_branch, new_tag, serialize
from bridge.sip.routing import next_hop
from bridge.sip.timers import TimerSettings
from bridge.sip.transaction import ClientTransaction, Endpoint, mirror_invite

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"


class CallPhase(Enum):
    CALLING = "calling"
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


@dataclass(slots=True)
class CallSettings:
    """Everything needed to place one call."""

    call_id: str
    request_uri: URI
    from_uri: URI
    destination: Endpoint
    local_address: Endpoint
    sdp_offer: bytes
    credentials: Credentials | None = None
    user_agent: str = "sip-rtmp-bridge"
    answer_timeout: float = 60.0
    timers: TimerSettings = field(default_factory=TimerSettings)


class OutboundCall:
    """Places an INVITE, authenticates, confirms the dialog and hangs up."""

    def __init__(self, settings: CallSettings) -> None:
        self.settings = settings
        self.call_id = settings.call_id
        self.phase = CallPhase.CALLING
        self.events: list[CallEvent] = []
        self.outbox: list[tuple[bytes, Endpoint]] = []
        self.local_tag = new_tag()
        self.remote_tag: str | None = None
        self.remote_target: URI = settings.request_uri
        self.route_set: list[Address] = []
        self._transactions: dict[tuple[str, str], ClientTransaction] = {}
        self._invite: ClientTransaction | None = None
        self._cseq = 0
        self._digest = DigestClient(settings.credentials) if settings.credentials else None
        self._auth_headers: dict[str, str] = {}
        self._auth_retries: dict[str, int] = {}
        self._ack: tuple[bytes, Endpoint] | None = None
        self._hangup_cause: EndCause | None = None
        self._cancel_sent = False
        self._answer_deadline: float | None = None
        self._give_up_at: float | None = None
        self._ended = False

    # -- public API -----------------------------------------------------------------

    def start(self, now: float) -> None:
        """Send the initial INVITE."""
        self._answer_deadline = now + self.settings.answer_timeout
        self._send_invite(now)

    def hangup(self, now: float, cause: EndCause = EndCause.LOCAL_HANGUP) -> None:
        """End the call: CANCEL while ringing, BYE once confirmed (sections 9.1, 15.1.1)."""
        if self._hangup_cause is not None or self.phase is CallPhase.TERMINATED:
            return
        self._hangup_cause = cause
        if self.phase is CallPhase.CONFIRMED:
            self._send_bye(now)
        elif self.phase is CallPhase.EARLY:
            self._send_cancel(now)
        # CALLING: a CANCEL must wait for a provisional response (section 9.1).
        self._give_up_at = now + self.settings.timers.transaction_timeout

    @property
    def finished(self) -> bool:
        """True when the call ended and no transaction needs to absorb retransmissions."""
        return self.phase is CallPhase.TERMINATED and all(t.terminated for t in self._transactions.values())

    def get_timer(self) -> float | None:
        deadlines = [t.get_timer() for t in self._transactions.values()]
        if self.phase in (CallPhase.CALLING, CallPhase.EARLY):
            deadlines.append(self._answer_deadline)
        if self.phase is not CallPhase.TERMINATED:
            deadlines.append(self._give_up_at)
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def handle_timer(self, now: float) -> None:
        for transaction in list(self._transactions.values()):
            deadline = transaction.get_timer()
            if deadline is not None and now >= deadline:
                transaction.handle_timer(now)
                if transaction.timed_out:
                    self._on_transaction_timeout(transaction)
        self._collect_outbox()
        if self._answer_deadline is not None and now >= self._answer_deadline:
            self._answer_deadline = None
            if self.phase in (CallPhase.CALLING, CallPhase.EARLY):
                self.hangup(now, EndCause.NO_ANSWER)
        if self._give_up_at is not None and now >= self._give_up_at:
            self._give_up_at = None
            self._end(CallEnded(self._hangup_cause or EndCause.TIMEOUT))
        self._prune()

    def receive_response(self, response: Response, now: float) -> None:
        """A response whose Call-ID is ours (section 17.1.3: matched by branch and CSeq method)."""
        transaction = self._transactions.get((branch_of(response), response.cseq.method))
        if transaction is None:
            return
        passed = transaction.receive_response(response, now)
        if passed is not None and transaction is self._invite:
            self._on_invite_response(passed, now)
        elif passed is not None and passed.code >= 200:
            self._on_non_invite_final(transaction, passed, now)
        self._collect_outbox()
        self._prune()

    def receive_request(self, request: Request, now: float) -> Response | None:
        """An in-dialog request from the far end; returns the response to send."""
        if request.method == "ACK":
            return None
        if request.to_address.parameters.get("tag") != self.local_tag:
            return build_response(request, 481, "Call/Transaction Does Not Exist")
        if request.method == "BYE":
            response = build_response(request, 200, "OK")
            self._end(CallEnded(EndCause.REMOTE_HANGUP))
            return response
        if request.method == "OPTIONS":
            response = build_response(request, 200, "OK")
            response.headers.set("Allow", ALLOW)
            response.headers.set("Accept", "application/sdp")
            return response
        response = build_response(request, 501, "Not Implemented")
        response.headers.set("Allow", ALLOW)
        return response

    # -- INVITE ---------------------------------------------------------------------

    def _send_invite(self, now: float) -> None:
        self._cseq += 1
        request = self._new_request("INVITE", self.settings.request_uri)
        request.to_address = Address(uri=self.settings.request_uri)
        request.contact = [self._contact()]
        request.headers.set("Allow", ALLOW)
        request.headers.set("Content-Type", "application/sdp")
        request.body = self.settings.sdp_offer
        for name, value in self._auth_headers.items():
            request.headers.set(name, value)
        transaction = ClientTransaction(request, self.settings.destination, now, self.settings.timers)
        self._invite = transaction
        self._transactions[(transaction.branch, transaction.method)] = transaction
        self._collect_outbox()

    def _on_invite_response(self, response: Response, now: float) -> None:
        if response.code < 200:
            self._on_provisional(response, now)
        elif response.code < 300:
            self._on_invite_success(response, now)
        elif response.code in (401, 407):
            self._on_challenge(response, now)
        else:
            self._on_invite_failure(response)

    def _on_provisional(self, response: Response, now: float) -> None:
        if self.phase is CallPhase.CALLING:
            self.phase = CallPhase.EARLY
        if self._hangup_cause is not None:
            if not self._cancel_sent:
                self._send_cancel(now)
            return
        if response.code != 100:
            self.events.append(CallProgress(response.code, response.phrase))

    def _on_invite_success(self, response: Response, now: float) -> None:
        tag = response.to_address.parameters.get("tag")
        if self.phase in (CallPhase.CONFIRMED, CallPhase.TERMINATING, CallPhase.TERMINATED):
            if tag == self.remote_tag and self._ack is not None:
                self.outbox.append(self._ack)  # retransmitted 2xx: repeat the ACK (13.2.2.4)
            return
        self._establish_dialog(response, tag)
        self._send_ack()
        if self._hangup_cause is not None:
            self._send_bye(now)
            return
        self.events.append(CallAnswered(response.code, response.phrase, response.body))

    def _on_challenge(self, response: Response, now: float) -> None:
        if self._hangup_cause is not None:
            self._end(CallEnded(self._hangup_cause, response.code, response.phrase))
            return
        if self._answer_challenge(response, "INVITE", self.settings.request_uri):
            self._send_invite(now)
            return
        self._end(CallEnded(EndCause.AUTH_FAILED, response.code, response.phrase))

    def _on_invite_failure(self, response: Response) -> None:
        cause = cause_for_status(response.code)
        if self._hangup_cause is not None and response.code == 487:
            cause = self._hangup_cause
        self._end(CallEnded(cause, response.code, response.phrase))

    def _answer_challenge(self, response: Response, method: str, uri: URI) -> bool:
        """Prepare credentials for a 401/407 (section 22.2); False if we must give up."""
        challenge, header = _challenge_of(response)
        if self._digest is None or challenge is None:
            return False
        stale = (challenge.parameters.get("stale") or "").lower() == "true"
        retries = self._auth_retries.get(header, 0)
        if retries >= 1 and not stale:
            return False  # our credentials were refused: no retry loop
        if not stale:
            self._auth_retries[header] = retries + 1
        try:
            answer = self._digest.answer(challenge, method, str(uri))
        except DigestError:
            return False
        self._auth_headers[header] = str(answer)
        return True

    # -- dialog ---------------------------------------------------------------------

    def _establish_dialog(self, response: Response, tag: str | None) -> None:
        """Dialog state from a 2xx, section 12.1.2: route set, remote target, tag."""
        self.phase = CallPhase.CONFIRMED
        self.remote_tag = tag
        self.route_set = list(reversed(response.record_route))
        contacts = response.contact
        if contacts:
            self.remote_target = contacts[0].uri

    def _send_ack(self) -> None:
        """ACK for a 2xx, its own transaction (section 13.2.2.4), same CSeq number."""
        assert self._invite is not None
        request = self._in_dialog_request("ACK", self._invite.request.cseq.sequence)
        for name, value in self._auth_headers.items():
            request.headers.set(name, value)
        self._ack = (serialize(request), self._next_hop())
        self.outbox.append(self._ack)

    def _send_bye(self, now: float) -> None:
        self.phase = CallPhase.TERMINATING
        self._cseq += 1
        request = self._in_dialog_request("BYE", self._cseq)
        self._start_transaction(request, self._next_hop(), now)

    def _send_cancel(self, now: float) -> None:
        """CANCEL mirrors the INVITE's Request-URI, Via branch, To and CSeq number (9.1)."""
        assert self._invite is not None
        invite = self._invite.request
        request = mirror_invite(invite, "CANCEL", invite.to_address)
        self._cancel_sent = True
        self._start_transaction(request, self._invite.destination, now)

    def _on_non_invite_final(self, transaction: ClientTransaction, response: Response, now: float) -> None:
        if transaction.method != "BYE":
            return
        if response.code in (401, 407) and self._answer_challenge(response, "BYE", self.remote_target):
            self._cseq += 1
            request = self._in_dialog_request("BYE", self._cseq)
            self._start_transaction(request, self._next_hop(), now)
            return
        self._end(CallEnded(self._hangup_cause or EndCause.LOCAL_HANGUP))

    def _on_transaction_timeout(self, transaction: ClientTransaction) -> None:
        if transaction is self._invite:
            self._end(CallEnded(self._hangup_cause or EndCause.TIMEOUT, 408, "Request Timeout"))
        elif transaction.method == "BYE":
            self._end(CallEnded(self._hangup_cause or EndCause.LOCAL_HANGUP))

    # -- helpers --------------------------------------------------------------------

    def _new_request(self, method: str, uri: URI) -> Request:
        request = Request(method, uri)
        host, port = self.settings.local_address
        request.via = [Via("UDP", host, port, Parameters(branch=new_branch(), rport=None))]
        request.max_forwards = 70
        request.from_address = Address(uri=self.settings.from_uri, parameters=Parameters(tag=self.local_tag))
        request.call_id = self.call_id
        request.cseq = CSeq(sequence=self._cseq, method=method)
        request.user_agent = self.settings.user_agent
        return request

    def _in_dialog_request(self, method: str, sequence: int) -> Request:
        """A request within the dialog, section 12.2.1.1 (loose routing)."""
        request = self._new_request(method, self.remote_target)
        request.cseq = CSeq(sequence=sequence, method=method)
        params = Parameters(tag=self.remote_tag) if self.remote_tag else Parameters()
        request.to_address = Address(uri=self.settings.request_uri, parameters=params)
        if self.route_set:
            request.route = self.route_set
        return request

    def _next_hop(self) -> Endpoint:
        return next_hop(self.route_set, self.remote_target, self.settings.destination)

    def _contact(self) -> Address:
        host, port = self.settings.local_address
        return Address(uri=URI(scheme="sip", host=host, port=port, user=self.settings.from_uri.user))

    def _start_transaction(self, request: Request, destination: Endpoint, now: float) -> None:
        transaction = ClientTransaction(request, destination, now, self.settings.timers)
        self._transactions[(transaction.branch, transaction.method)] = transaction
        self._collect_outbox()

    def _collect_outbox(self) -> None:
        for transaction in self._transactions.values():
            if transaction.outbox:
                self.outbox.extend(transaction.outbox)
                transaction.outbox.clear()

    def _prune(self) -> None:
        done = [k for k, t in self._transactions.items() if t.terminated and t is not self._invite]
        for key in done:
            del self._transactions[key]

    def _end(self, event: CallEnded) -> None:
        if self._ended:
            return
        self._ended = True
        self.phase = CallPhase.TERMINATED
        self._give_up_at = None
        self.events.append(event)


def _challenge_of(response: Response) -> tuple[AuthChallenge | None, str]:
    """The best challenge in a 401 (WWW-) or 407 (Proxy-Authenticate), and the header to answer with."""
    if response.code == 407:
        return strongest_challenge(response.headers.getlist("Proxy-Authenticate")), "Proxy-Authorization"
    return strongest_challenge(response.headers.getlist("WWW-Authenticate")), "Authorization"
