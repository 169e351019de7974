"""An outbound call: the UAC side of an INVITE dialog (sans-IO).

RFC 3261 sections 8.1 (requests), 12 (dialogs), 13.2 (INVITE client), 9.1
(CANCEL), 15.1.1 (BYE), 22.2 (retrying with credentials), RFC 4028 (session
timers, via :mod:`bridge.sip.refresh`). Requests from the far end inside the
dialog are handled by :mod:`bridge.sip.indialog`.
"""

from __future__ import annotations

from enum import Enum

from sipmessage import URI, Address, Request, Response

from bridge.sip.addressing import Destination
from bridge.sip.dialog import ALLOW, CallSettings, Dialog
from bridge.sip.events import CallAnswered, CallEnded, CallProgress, EndCause, ServerFailover, cause_for_status
from bridge.sip.indialog import InDialogServer
from bridge.sip.message import branch_of, serialize
from bridge.sip.offer_answer import OfferAnswer
from bridge.sip.refresh import SessionRefresher
from bridge.sip.routing import next_hop, uri_destination
from bridge.sip.sdp import SdpError
from bridge.sip.transaction import ClientTransaction, mirror_invite
from rtp.peer import Peer

__all__ = ["ALLOW", "CallPhase", "CallSettings", "OutboundCall"]

MAX_REDIRECTS = 3


class CallPhase(Enum):
    CALLING = "calling"
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


class OutboundCall:
    """Places an INVITE, authenticates, confirms the dialog, keeps it alive and hangs up."""

    def __init__(self, settings: CallSettings) -> None:
        self.settings = settings
        self.call_id = settings.call_id
        self.dialog = Dialog(settings)
        self.media = OfferAnswer(settings.offer, settings.srtp, settings.offered_crypto)
        self.refresher = SessionRefresher(self.dialog, self.media, settings.session_expires)
        self.server = InDialogServer(self.dialog, self.media, self.refresher, on_bye=self._on_remote_bye)
        self.phase = CallPhase.CALLING
        self._invite: ClientTransaction | None = None
        self._invite_auth: dict[str, str] = {}
        self._ack: tuple[bytes, Destination] | None = None
        self._hangup_cause: EndCause | None = None
        self._cancel_sent = False
        self._answer_deadline: float | None = None
        self._give_up_at: float | None = None
        self._target: URI = settings.request_uri
        self._destination: Destination = settings.destination
        self._alternates = list(settings.alternates)
        self._redirects = 0
        self._forks: dict[str | None, tuple[bytes, Destination]] = {}
        self._fork_byes: set[ClientTransaction] = set()
        self._info: tuple[str, bytes] | None = None  # the pending INFO's content type and body
        self.info_refused = False  # the far end answered INFO with 405/415/489/501: send no more

    # -- the driver's view ------------------------------------------------------------

    @property
    def outbox(self) -> list[tuple[bytes, Destination]]:
        return self.dialog.outbox

    @property
    def events(self) -> list:  # type: ignore[type-arg]
        return self.dialog.events

    @property
    def local_tag(self) -> str:
        return self.dialog.local_tag

    @property
    def finished(self) -> bool:
        """True when the call ended and no transaction needs to absorb retransmissions."""
        return self.phase is CallPhase.TERMINATED and all(t.terminated for t in self.dialog.transactions.values())

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

    def get_timer(self) -> float | None:
        deadlines = [t.get_timer() for t in self.dialog.transactions.values()]
        if self.phase in (CallPhase.CALLING, CallPhase.EARLY):
            deadlines.append(self._answer_deadline)
        if self.phase is CallPhase.CONFIRMED:
            deadlines += [self.refresher.get_timer(), self.server.get_timer()]
        if self.phase is not CallPhase.TERMINATED:
            deadlines.append(self._give_up_at)
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def handle_timer(self, now: float) -> None:
        for transaction in list(self.dialog.transactions.values()):
            deadline = transaction.get_timer()
            if deadline is not None and now >= deadline:
                transaction.handle_timer(now)
                if transaction.timed_out:
                    self._on_transaction_timeout(transaction, now)
        self.dialog.collect_outbox()
        if self.phase is CallPhase.CONFIRMED:
            self._dialog_timers(now)
        if self._answer_deadline is not None and now >= self._answer_deadline:
            self._answer_deadline = None
            if self.phase in (CallPhase.CALLING, CallPhase.EARLY):
                self.hangup(now, EndCause.NO_ANSWER)
        if self._give_up_at is not None and now >= self._give_up_at:
            self._give_up_at = None
            self._end(CallEnded(self._hangup_cause or EndCause.TIMEOUT))
        self.dialog.prune(keep=self._invite)

    def _dialog_timers(self, now: float) -> None:
        if self.refresher.handle_timer(now) or self.server.handle_timer(now):
            self.hangup(now, self.refresher.failure or self.server.failure or EndCause.SESSION_EXPIRED)

    def receive_response(self, response: Response, now: float) -> None:
        """A response whose Call-ID is ours (section 17.1.3: matched by branch and CSeq method)."""
        transaction = self.dialog.transactions.get((branch_of(response), response.cseq.method))
        if transaction is None:
            return
        passed = transaction.receive_response(response, now)
        if passed is not None:
            self.dialog.ladder.record("in", passed, now)
            self._dispatch_response(transaction, passed, now)
        self.dialog.collect_outbox()
        self.dialog.prune(keep=self._invite)

    def _dispatch_response(self, transaction: ClientTransaction, response: Response, now: float) -> None:
        if transaction is self._invite:
            self._on_invite_response(response, now)
        elif self.refresher.owns(transaction):
            if self.refresher.on_response(transaction, response, now):
                self.hangup(now, EndCause.SESSION_EXPIRED)
        elif transaction in self._fork_byes:
            return  # the answer to the BYE that ended a forked dialog concerns nobody
        elif response.code >= 200 and transaction.method == "BYE":
            self._on_bye_final(response, now)
        elif response.code >= 200 and transaction.method == "INFO":
            self._on_info_final(response, now)

    def transport_failed(self, destination: Destination, now: float) -> None:
        """Section 8.1.3.1: a transport error on a pending request acts like a 503."""
        for transaction in list(self.dialog.transactions.values()):
            same = (transaction.destination.transport, transaction.destination.address)
            if same == (destination.transport, destination.address) and not transaction.terminated:
                transaction.fail_transport()
                self._on_transaction_timeout(transaction, now)
        self.dialog.prune(keep=self._invite)

    def receive_request(self, request: Request, source: Destination, now: float) -> Response | None:
        """A request from the far end within the dialog; returns the response to send."""
        self.dialog.ladder.record("in", request, now)
        response = self.server.receive(request, source, now)
        if response is not None:
            self.dialog.ladder.record("out", response, now)
        self.dialog.collect_outbox()
        return response

    # -- INVITE ---------------------------------------------------------------------

    def _send_invite(self, now: float) -> None:
        self.dialog.cseq += 1
        request = self.dialog.new_request("INVITE", self._target)
        request.to_address = Address(uri=self.settings.request_uri)
        request.contact = [self.dialog.contact()]
        request.headers.set("Allow", ALLOW)
        for name, value in self.refresher.request_headers().items():
            request.headers.set(name, value)
        request.headers.set("Content-Type", "application/sdp")
        request.body = self.media.local_bytes()
        for name, value in self._invite_auth.items():
            request.headers.set(name, value)
        self._invite = self.dialog.start_transaction(request, self._destination, now)

    def _on_invite_response(self, response: Response, now: float) -> None:
        if response.code < 200:
            self._on_provisional(response, now)
        elif response.code < 300:
            self._on_invite_success(response, now)
        elif response.code in (401, 407):
            self._on_challenge(response, now)
        elif 300 <= response.code < 400 and self._follow_redirect(response, now):
            return
        elif response.code == 422 and self.refresher.accept_min_se(response) and self._hangup_cause is None:
            self._send_invite(now)
        elif response.code == 503 and self._fail_over(f"{response.code} {response.phrase}", now):
            return
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
            self.dialog.events.append(CallProgress(response.code, response.phrase, self._early_media(response)))

    def _early_media(self, response: Response) -> Peer | None:
        """The SDP of a 18x (early media, RFC 3960); the 2xx confirms or replaces it."""
        if not response.body:
            return None
        try:
            return self.media.accept_answer(response.body)
        except SdpError:
            return None

    def _on_invite_success(self, response: Response, now: float) -> None:
        tag = response.to_address.parameters.get("tag")
        if self.phase in (CallPhase.CONFIRMED, CallPhase.TERMINATING, CallPhase.TERMINATED):
            if tag == self.dialog.remote_tag and self._ack is not None:
                self.dialog.outbox.append(self._ack)  # retransmitted 2xx: repeat the ACK (13.2.2.4)
            elif tag in self._forks:
                self.dialog.outbox.append(self._forks[tag])  # the fork's 2xx again: same ACK
            elif tag != self.dialog.remote_tag:
                self._drop_fork(response, tag, now)
            return
        self._establish_dialog(response, tag, now)
        self._send_ack(now)
        if self._hangup_cause is not None:
            self._send_bye(now)
            return
        self.dialog.events.append(self._answered(response))

    def _answered(self, response: Response) -> CallAnswered:
        if not response.body:
            return CallAnswered(response.code, response.phrase, None, "the 2xx carries no SDP answer")
        try:
            return CallAnswered(response.code, response.phrase, self.media.accept_answer(response.body))
        except SdpError as exc:
            return CallAnswered(response.code, response.phrase, None, str(exc))

    def _drop_fork(self, response: Response, tag: str | None, now: float) -> None:
        """A 2xx from another fork (13.2.2.4): ACK it, then end that second dialog with BYE."""
        assert self._invite is not None
        routes = list(reversed(response.record_route))
        target = response.contact[0].uri if response.contact else self.settings.request_uri
        hop = next_hop(routes, target, self.settings.destination)
        sequence = self._invite.request.cseq.sequence
        ack = self.dialog.request_in("ACK", target, routes, tag, sequence)
        self._forks[tag] = (serialize(ack), hop)
        self.dialog.send(*self._forks[tag], ack, now)
        bye = self.dialog.request_in("BYE", target, routes, tag, sequence + 1)
        self._fork_byes.add(self.dialog.start_transaction(bye, hop, now))

    def _on_challenge(self, response: Response, now: float) -> None:
        if self._hangup_cause is not None:
            self._end(CallEnded(self._hangup_cause, response.code, response.phrase))
            return
        credentials = self.dialog.answer_challenge(response, "INVITE", self._target)
        if credentials is None:
            self._end(CallEnded(EndCause.AUTH_FAILED, response.code, response.phrase))
            return
        self._invite_auth[credentials[0]] = credentials[1]
        self._send_invite(now)

    def _follow_redirect(self, response: Response, now: float) -> bool:
        """3xx: retry at the first Contact, at most MAX_REDIRECTS times (RFC 3261 section 8.1.3.4)."""
        if self._hangup_cause is not None or self._redirects >= MAX_REDIRECTS or not response.contact:
            return False
        target = response.contact[0].uri
        if target.scheme not in ("sip", "sips"):
            return False
        self._redirects += 1
        self._target = target
        fallback = self.settings.destination
        self._destination = uri_destination(target, fallback.transport) or fallback
        self._invite_auth.clear()
        self.phase = CallPhase.CALLING
        self.dialog.events.append(CallProgress(response.code, f"{response.phrase}, trying {target}"))
        self._send_invite(now)
        return True

    def _fail_over(self, reason: str, now: float) -> bool:
        """Try the next server of the domain after a 503, timeout or transport error (RFC 3263 4.3)."""
        if self._hangup_cause is not None or not self._alternates:
            return False
        if self.phase not in (CallPhase.CALLING, CallPhase.EARLY):
            return False
        self.phase = CallPhase.CALLING
        self._destination = self._alternates.pop(0)
        self._invite_auth.clear()
        self.dialog.events.append(ServerFailover(str(self._destination), reason))
        self._send_invite(now)
        return True

    def _on_invite_failure(self, response: Response) -> None:
        cause = cause_for_status(response.code)
        if self._hangup_cause is not None and response.code == 487:
            cause = self._hangup_cause
        self._end(CallEnded(cause, response.code, response.phrase))

    # -- dialog ---------------------------------------------------------------------

    def _establish_dialog(self, response: Response, tag: str | None, now: float) -> None:
        """Dialog state from a 2xx, section 12.1.2: route set, remote target, tag."""
        self.phase = CallPhase.CONFIRMED
        dialog = self.dialog
        dialog.remote_tag = tag
        dialog.route_set = list(reversed(response.record_route))
        if response.contact:
            dialog.remote_target = response.contact[0].uri
        dialog.reset_auth_retries()
        self.refresher.on_established(response, now)

    def _send_ack(self, now: float) -> None:
        """ACK for a 2xx, its own transaction (section 13.2.2.4), same CSeq number and credentials."""
        assert self._invite is not None
        request = self.dialog.in_dialog_request("ACK", self._invite.request.cseq.sequence)
        for name, value in self._invite_auth.items():
            request.headers.set(name, value)
        self._ack = (serialize(request), self.dialog.next_hop())
        self.dialog.send(*self._ack, request, now)

    def _send_bye(self, now: float, credentials: tuple[str, str] | None = None) -> None:
        self.phase = CallPhase.TERMINATING
        request = self.dialog.in_dialog_request("BYE")
        if credentials is not None:
            request.headers.set(*credentials)
        self.dialog.start_transaction(request, self.dialog.next_hop(), now)

    def _send_cancel(self, now: float) -> None:
        """CANCEL mirrors the INVITE's Request-URI, Via branch, To and CSeq number (9.1)."""
        assert self._invite is not None
        invite = self._invite.request
        self._cancel_sent = True
        self.dialog.start_transaction(mirror_invite(invite, "CANCEL", invite.to_address), self._invite.destination, now)

    # -- INFO (RFC 6086) ---------------------------------------------------------------

    def send_info(self, content_type: str, body: bytes, now: float) -> bool:
        """An INFO in the confirmed dialog (one at a time: RFC 6086 section 4.2.1 wants them in
        order); False if there is no dialog, one is pending, or the far end refused INFO before."""
        if self.phase is not CallPhase.CONFIRMED or self._info is not None or self.info_refused:
            return False
        self._info = (content_type, body)
        self._send_info(now)
        return True

    def _send_info(self, now: float, credentials: tuple[str, str] | None = None) -> None:
        assert self._info is not None
        request = self.dialog.in_dialog_request("INFO")
        request.headers.set("Content-Type", self._info[0])
        request.body = self._info[1]
        if credentials is not None:
            request.headers.set(*credentials)
        self.dialog.start_transaction(request, self.dialog.next_hop(), now)

    def _on_info_final(self, response: Response, now: float) -> None:
        if response.code in (401, 407) and self._info is not None:
            credentials = self.dialog.answer_challenge(response, "INFO", self.dialog.remote_target)
            if credentials is not None:
                self._send_info(now, credentials)
                return
        self.info_refused = self.info_refused or response.code in (405, 415, 489, 501)
        self._info = None

    def _on_bye_final(self, response: Response, now: float) -> None:
        if response.code in (401, 407):
            credentials = self.dialog.answer_challenge(response, "BYE", self.dialog.remote_target)
            if credentials is not None:
                self._send_bye(now, credentials)
                return
        self._end(CallEnded(self._hangup_cause or EndCause.LOCAL_HANGUP))

    def _on_remote_bye(self) -> None:
        self._end(CallEnded(EndCause.REMOTE_HANGUP))

    def _on_transaction_timeout(self, transaction: ClientTransaction, now: float) -> None:
        if transaction is self._invite:
            reason = "transport error" if transaction.transport_failed else "timeout"
            if self._fail_over(reason, now):
                return
            # Nothing ever answered: a timeout, unless we were asked to hang up anyway.
            local = self._hangup_cause is EndCause.LOCAL_HANGUP
            if local:
                self._end(CallEnded(EndCause.LOCAL_HANGUP))
            elif transaction.transport_failed:
                self._end(CallEnded(EndCause.UNAVAILABLE, 503, "Service Unavailable (transport error)"))
            else:
                self._end(CallEnded(EndCause.TIMEOUT, 408, "Request Timeout"))
        elif transaction.method == "INFO":
            self._info = None  # RFC 5057 4.1: a non-INVITE timeout in a dialog does not end the call
        elif transaction.method == "BYE" and transaction not in self._fork_byes:
            self._end(CallEnded(self._hangup_cause or EndCause.LOCAL_HANGUP))
        elif self.refresher.owns(transaction) and self.refresher.on_timeout(transaction):
            self.hangup(now, EndCause.SESSION_EXPIRED)

    def _end(self, event: CallEnded) -> None:
        self.phase = CallPhase.TERMINATED
        self._give_up_at = None
        self.dialog.end(event)
