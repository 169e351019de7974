"""Our side of RFC 4028: asking for session timers, and refreshing when we are the refresher.

A refresh is an UPDATE without SDP when the far end allows UPDATE (RFC 4028
section 9, RFC 3311), else a re-INVITE carrying our unchanged SDP. Failure
handling per RFC 4028 section 10: 408/481 or no answer end the call; 491 retries
after 2.1-4 s (RFC 3261 section 14.1); 401/407 are answered; 422 raises the interval.
"""

from __future__ import annotations

import random

from sipmessage import Response

from bridge.sip.dialog import Dialog
from bridge.sip.events import EndCause, MediaChanged
from bridge.sip.message import serialize
from bridge.sip.offer_answer import OfferAnswer
from bridge.sip.sdp import SdpError
from bridge.sip.session_timer import MIN_SE, SessionTimer, parse_session_expires
from bridge.sip.transaction import ClientTransaction


class SessionRefresher:
    """Keeps the session timer and sends our refreshes."""

    def __init__(self, dialog: Dialog, media: OfferAnswer, requested_seconds: int) -> None:
        self.dialog = dialog
        self.media = media
        self.enabled = requested_seconds > 0
        self.timer = SessionTimer(requested_seconds if self.enabled else MIN_SE)
        self.failure: EndCause | None = None
        self._transaction: ClientTransaction | None = None
        self._retry_at: float | None = None
        self._far_end_allows_update = False
        self._min_se_retried = False

    @property
    def busy(self) -> bool:
        """Our re-INVITE/UPDATE is waiting for its final response (glare: answer theirs 491)."""
        return self._transaction is not None and not self._transaction.terminated

    def request_headers(self) -> dict[str, str]:
        return self.timer.request_headers() if self.enabled else {"Supported": "timer"}

    def accept_min_se(self, response: Response) -> bool:
        """422 Session Interval Too Small: retry once with the far end's Min-SE."""
        value = response.headers.get("Min-SE")
        if not self.enabled or self._min_se_retried or value is None or not value.strip().isdigit():
            return False
        self._min_se_retried = True
        self.timer.requested = max(self.timer.requested, int(value.strip()))
        return True

    def on_established(self, response: Response, now: float) -> None:
        allow = response.headers.get("Allow") or ""
        self._far_end_allows_update = "UPDATE" in allow.upper()
        self.timer.start(parse_session_expires(response.headers.get("Session-Expires")), True, now)

    def refresh_received(self, value: str | None, now: float) -> str | None:
        """The far end refreshed (re-INVITE/UPDATE); returns the Session-Expires for our 2xx."""
        return self.timer.answer_refresh(value, now)

    def get_timer(self) -> float | None:
        present = [t for t in (self.timer.get_timer(), self._retry_at) if t is not None]
        return min(present) if present else None

    def handle_timer(self, now: float) -> bool:
        """Send a due refresh; True if the session has expired and must end."""
        if self.timer.expired(now):
            self.failure = EndCause.SESSION_EXPIRED
            return True
        retry = self._retry_at is not None and now >= self._retry_at
        if retry:
            self._retry_at = None
        if (self.timer.refresh_due(now) or retry) and not self.busy:
            self._send_refresh(now)
        return False

    def owns(self, transaction: ClientTransaction) -> bool:
        return transaction is self._transaction

    def on_response(self, transaction: ClientTransaction, response: Response, now: float) -> bool:
        """A response to our refresh; True if the call must end."""
        code = response.code
        if code < 200:
            return False
        if code < 300:
            self._on_success(transaction, response, now)
        elif code in (401, 407):
            credentials = self.dialog.answer_challenge(response, transaction.method, self.dialog.remote_target)
            if credentials is not None:
                self._send_refresh(now, credentials)
        elif code == 422 and self.accept_min_se(response):
            self._send_refresh(now)
        elif code == 491:
            self._retry_at = now + random.uniform(2.1, 4.0)
        elif code in (408, 481):
            self.failure = EndCause.SESSION_EXPIRED
            return True
        return False

    def on_timeout(self, transaction: ClientTransaction) -> bool:
        self.failure = EndCause.SESSION_EXPIRED
        return True

    def _send_refresh(self, now: float, credentials: tuple[str, str] | None = None) -> None:
        method = "UPDATE" if self._far_end_allows_update else "INVITE"
        request = self.dialog.in_dialog_request(method)
        request.contact = [self.dialog.contact()]
        for name, value in self.timer.request_headers().items():
            request.headers.set(name, value)
        if method == "INVITE":
            request.headers.set("Content-Type", "application/sdp")
            request.body = self.media.local_bytes()
        if credentials is not None:
            request.headers.set(*credentials)
        self._transaction = self.dialog.start_transaction(request, self.dialog.next_hop(), now)

    def _on_success(self, transaction: ClientTransaction, response: Response, now: float) -> None:
        self.dialog.reset_auth_retries()
        if transaction.method == "INVITE":
            ack = self.dialog.in_dialog_request("ACK", transaction.request.cseq.sequence)
            self.dialog.send(serialize(ack), self.dialog.next_hop(), ack, now)
            if response.body:
                try:
                    remote = self.media.accept_answer(response.body)
                    self.dialog.events.append(MediaChanged(remote))
                except SdpError:
                    pass  # keep the previous media; the far end's answer is unusable
        if response.contact:
            self.dialog.remote_target = response.contact[0].uri
        self.timer.start(parse_session_expires(response.headers.get("Session-Expires")), True, now)
