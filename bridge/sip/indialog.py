"""Requests from the far end inside our dialog (sans-IO).

BYE ends the call (RFC 3261 section 15.1.2); re-INVITE and UPDATE carry offers
(hold, resume, new address; RFC 3264, RFC 3311) and session refreshes (RFC 4028);
our 2xx to a re-INVITE is retransmitted until its ACK (section 13.3.1.4); INFO with
application/dtmf-relay reports DTMF; NOTIFY without a subscription is 481
(RFC 6665); REFER is declined (603, no transfer support); OPTIONS gets 200.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sipmessage import Request, Response

from bridge.sip.addressing import Destination
from bridge.sip.dialog import ALLOW, Dialog
from bridge.sip.events import DtmfReceived, EndCause, MediaChanged
from bridge.sip.message import build_response, serialize
from bridge.sip.offer_answer import OfferAnswer
from bridge.sip.refresh import SessionRefresher
from bridge.sip.reliability import AnswerRetransmitter
from bridge.sip.sdp import SdpError

_DTMF_RELAY_SIGNAL = re.compile(r"^\s*Signal\s*=\s*(?P<digit>[0-9A-Da-d*#]|1[0-6])\s*$", re.M)
_DTMF_RELAY_DURATION = re.compile(r"^\s*Duration\s*=\s*(?P<ms>\d+)\s*$", re.M)
_EVENT_DIGITS = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D", "16": "flash"}


class InDialogServer:
    """Answers the far end's in-dialog requests and reports what they change."""

    def __init__(
        self, dialog: Dialog, media: OfferAnswer, refresher: SessionRefresher, on_bye: Callable[[], None]
    ) -> None:
        self.dialog = dialog
        self.media = media
        self.refresher = refresher
        self._on_bye = on_bye
        self._pending_answer: AnswerRetransmitter | None = None
        self._ack_carries_answer = False
        self.failure: EndCause | None = None

    def get_timer(self) -> float | None:
        return self._pending_answer.get_timer() if self._pending_answer else None

    def handle_timer(self, now: float) -> bool:
        """Retransmit our 2xx; True if it was never ACKed (the session must end)."""
        pending = self._pending_answer
        if pending is None:
            return False
        self.dialog.outbox.extend(pending.poll(now))
        if pending.gave_up:
            self._pending_answer = None
            self.failure = EndCause.NO_ACK
            return True
        return False

    def receive(self, request: Request, source: Destination, now: float) -> Response | None:
        if request.method == "ACK":
            self._on_ack(request)
            return None
        if request.to_address.parameters.get("tag") != self.dialog.local_tag:
            return build_response(request, 481, "Call/Transaction Does Not Exist")
        if not self._cseq_in_order(request):
            return build_response(request, 500, "CSeq Out of Order")
        handler = _HANDLERS.get(request.method)
        if handler is None:
            response = build_response(request, 501, "Not Implemented")
            response.headers.set("Allow", ALLOW)
            return response
        return handler(self, request, source, now)

    def _cseq_in_order(self, request: Request) -> bool:
        """Section 12.2.2: a lower CSeq than the last one is out of order."""
        sequence = request.cseq.sequence
        if self.dialog.remote_cseq is not None and sequence <= self.dialog.remote_cseq:
            return False
        self.dialog.remote_cseq = sequence
        return True

    # -- methods --------------------------------------------------------------------

    def _bye(self, request: Request, source: Destination, now: float) -> Response:
        self._on_bye()
        return build_response(request, 200, "OK")

    def _options(self, request: Request, source: Destination, now: float) -> Response:
        response = build_response(request, 200, "OK")
        response.headers.set("Allow", ALLOW)
        response.headers.set("Accept", "application/sdp")
        return response

    def _reinvite(self, request: Request, source: Destination, now: float) -> Response:
        if self.refresher.busy:
            return build_response(request, 491, "Request Pending")
        if self._pending_answer is not None:
            response = build_response(request, 500, "Server Internal Error")
            response.headers.set("Retry-After", "1")
            return response
        response = self._offer_answer(request, now)
        if response.code == 200:
            data = serialize(response)
            self._pending_answer = AnswerRetransmitter(
                data, source, request.cseq.sequence, now, self.dialog.settings.timers
            )
            self._ack_carries_answer = not request.body
        return response

    def _update(self, request: Request, source: Destination, now: float) -> Response:
        if self.refresher.busy:
            return build_response(request, 491, "Request Pending")
        return self._offer_answer(request, now)

    def _offer_answer(self, request: Request, now: float) -> Response:
        """Answer the offer in a re-INVITE/UPDATE (or make one if it has none) and refresh the timer."""
        try:
            body = self._answer_body(request)
        except SdpError as exc:
            response = build_response(request, 488, "Not Acceptable Here")
            response.headers.set("Warning", f'304 sip-rtmp-bridge "{exc}"')
            return response
        if request.contact:
            self.dialog.remote_target = request.contact[0].uri  # target refresh, section 12.2.2
        response = build_response(request, 200, "OK")
        response.contact = [self.dialog.contact()]
        response.headers.set("Allow", ALLOW)
        response.headers.set("Supported", "timer")
        expires = self.refresher.refresh_received(request.headers.get("Session-Expires"), now)
        if expires is not None:
            response.headers.set("Session-Expires", expires)
            response.headers.set("Require", "timer")
        if body:
            response.headers.set("Content-Type", "application/sdp")
            response.body = body
        return response

    def _answer_body(self, request: Request) -> bytes:
        if request.body:
            body = self.media.answer_offer(request.body)
            remote = self.media.remote
            assert remote is not None
            self.dialog.events.append(MediaChanged(remote))
            return body
        if request.method == "INVITE":
            return self.media.offer_again()  # delayed offer: the answer comes in the ACK
        return b""  # UPDATE without SDP: a pure session refresh

    def _on_ack(self, request: Request) -> None:
        pending = self._pending_answer
        if pending is None or not pending.acknowledged(request.cseq.sequence):
            return
        self._pending_answer = None
        if self._ack_carries_answer and request.body:
            try:
                remote = self.media.accept_answer(request.body)
            except SdpError:
                return
            self.dialog.events.append(MediaChanged(remote))

    def _info(self, request: Request, source: Destination, now: float) -> Response:
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not request.body:
            return build_response(request, 200, "OK")  # an empty INFO is a keep-alive
        if content_type != "application/dtmf-relay":
            response = build_response(request, 415, "Unsupported Media Type")
            response.headers.set("Accept", "application/dtmf-relay")
            return response
        text = request.body.decode("utf-8", errors="replace")
        signal = _DTMF_RELAY_SIGNAL.search(text)
        if signal is None:
            return build_response(request, 400, "Bad DTMF Relay Body")
        duration = _DTMF_RELAY_DURATION.search(text)
        digit = _EVENT_DIGITS.get(signal["digit"], signal["digit"].upper())
        self.dialog.events.append(DtmfReceived(digit, int(duration["ms"]) if duration else None))
        return build_response(request, 200, "OK")

    def _notify(self, request: Request, source: Destination, now: float) -> Response:
        return build_response(request, 481, "Subscription Does Not Exist")

    def _refer(self, request: Request, source: Destination, now: float) -> Response:
        return build_response(request, 603, "Decline")


_Handler = Callable[[InDialogServer, Request, Destination, float], Response]
_HANDLERS: dict[str, _Handler] = {
    "BYE": InDialogServer._bye,
    "OPTIONS": InDialogServer._options,
    "INVITE": InDialogServer._reinvite,
    "UPDATE": InDialogServer._update,
    "INFO": InDialogServer._info,
    "NOTIFY": InDialogServer._notify,
    "REFER": InDialogServer._refer,
}
