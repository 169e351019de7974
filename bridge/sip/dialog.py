"""Dialog state shared by the parts of an outbound call (RFC 3261 section 12), sans-IO.

Holds the identifiers (Call-ID, tags), the route set and remote target, the local
CSeq, the client transactions, credentials for challenges (section 22.2), the
ladder, and the queues of datagrams and events the driver flushes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sipmessage import URI, Address, AuthChallenge, CSeq, Parameters, Request, Response, Via

from bridge.sip.addressing import Destination, bracket
from bridge.sip.digest import Credentials, DigestClient, DigestError, strongest_challenge
from bridge.sip.events import CallEnded, CallEvent
from bridge.sip.ladder import Ladder
from bridge.sip.message import new_branch, new_tag
from bridge.sip.routing import next_hop
from bridge.sip.sdes import CryptoAttribute, SrtpMode
from bridge.sip.sdp import SessionDescription
from bridge.sip.timers import TimerSettings
from bridge.sip.transaction import ClientTransaction

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY, REFER"


@dataclass(slots=True)
class CallSettings:
    """Everything needed to place one call."""

    call_id: str
    request_uri: URI
    from_uri: URI
    destination: Destination
    local_address: tuple[str, int]
    offer: SessionDescription
    alternates: list[Destination] = field(default_factory=list)
    srtp: SrtpMode = SrtpMode.OFF
    offered_crypto: list[CryptoAttribute] = field(default_factory=list)
    credentials: Credentials | None = None
    user_agent: str = "sip-rtmp-bridge"
    answer_timeout: float = 60.0
    session_expires: int = 1800
    timers: TimerSettings = field(default_factory=TimerSettings)


class Dialog:
    """Identifiers, routing and transactions of one call's dialog."""

    def __init__(self, settings: CallSettings) -> None:
        self.settings = settings
        self.call_id = settings.call_id
        self.local_tag = new_tag()
        self.remote_tag: str | None = None
        self.remote_target: URI = settings.request_uri
        self.route_set: list[Address] = []
        self.cseq = 0
        self.remote_cseq: int | None = None
        self.transactions: dict[tuple[str, str], ClientTransaction] = {}
        self.outbox: list[tuple[bytes, Destination]] = []
        self.events: list[CallEvent] = []
        self.ladder = Ladder()
        self.ended = False
        self._digest = DigestClient(settings.credentials) if settings.credentials else None
        self._auth_retries: dict[str, int] = {}

    # -- requests -------------------------------------------------------------------

    def new_request(self, method: str, uri: URI, sequence: int | None = None) -> Request:
        """A request with our Via (fresh branch, rport), From, Call-ID and CSeq."""
        request = Request(method, uri)
        host, port = self.settings.local_address
        transport = self.settings.destination.transport
        params = Parameters(branch=new_branch(), rport=None)
        if transport.reliable:
            params = params.replace(alias=None)  # RFC 5923: reuse this connection towards us
        request.via = [Via(transport.value, bracket(host), port, params)]
        request.max_forwards = 70
        request.from_address = Address(uri=self.settings.from_uri, parameters=Parameters(tag=self.local_tag))
        request.call_id = self.call_id
        request.cseq = CSeq(sequence=self.cseq if sequence is None else sequence, method=method)
        request.user_agent = self.settings.user_agent
        return request

    def in_dialog_request(self, method: str, sequence: int | None = None) -> Request:
        """A request within the dialog, section 12.2.1.1 (loose routing); a new CSeq unless given."""
        if sequence is None:
            self.cseq += 1
        return self.request_in(method, self.remote_target, self.route_set, self.remote_tag, sequence)

    def request_in(
        self, method: str, target: URI, route_set: list[Address], remote_tag: str | None, sequence: int | None
    ) -> Request:
        """A request in the dialog described by ``target``, ``route_set`` and ``remote_tag``."""
        request = self.new_request(method, target, sequence)
        params = Parameters(tag=remote_tag) if remote_tag else Parameters()
        request.to_address = Address(uri=self.settings.request_uri, parameters=params)
        if route_set:
            request.route = route_set
        return request

    def contact(self) -> Address:
        host, port = self.settings.local_address
        param = self.settings.destination.transport.uri_param
        params = Parameters(transport=param) if param else Parameters()
        return Address(
            uri=URI(scheme="sip", host=bracket(host), port=port, user=self.settings.from_uri.user, parameters=params)
        )

    def next_hop(self) -> Destination:
        return next_hop(self.route_set, self.remote_target, self.settings.destination)

    # -- transactions ---------------------------------------------------------------

    def start_transaction(self, request: Request, destination: Destination, now: float) -> ClientTransaction:
        transaction = ClientTransaction(request, destination, now, self.settings.timers)
        self.transactions[(transaction.branch, transaction.method)] = transaction
        self.ladder.record("out", request, now)
        self.collect_outbox()
        return transaction

    def send(self, data: bytes, destination: Destination, message: Request | Response, now: float) -> None:
        """A datagram outside any client transaction (ACK for 2xx, our 2xx to a re-INVITE)."""
        self.outbox.append((data, destination))
        self.ladder.record("out", message, now)

    def collect_outbox(self) -> None:
        for transaction in self.transactions.values():
            if transaction.outbox:
                self.outbox.extend(transaction.outbox)
                transaction.outbox.clear()

    def prune(self, keep: ClientTransaction | None) -> None:
        done = [k for k, t in self.transactions.items() if t.terminated and t is not keep]
        for key in done:
            del self.transactions[key]

    def end(self, event: CallEnded) -> None:
        if not self.ended:
            self.ended = True
            self.events.append(event)

    # -- authentication -------------------------------------------------------------

    def answer_challenge(self, response: Response, method: str, uri: URI) -> tuple[str, str] | None:
        """Credentials (header name, value) answering a 401/407 (section 22.2), or None to give up."""
        challenge, header = _challenge_of(response)
        if self._digest is None or challenge is None:
            return None
        stale = (challenge.parameters.get("stale") or "").lower() == "true"
        key = f"{header} {method}"
        retries = self._auth_retries.get(key, 0)
        if retries >= 1 and not stale:
            return None  # our credentials were refused: no retry loop
        if not stale:
            self._auth_retries[key] = retries + 1
        try:
            answer = self._digest.answer(challenge, method, str(uri))
        except DigestError:
            return None
        return header, str(answer)

    def reset_auth_retries(self) -> None:
        """A request succeeded: a later challenge (new nonce) may be answered again."""
        self._auth_retries.clear()


def _challenge_of(response: Response) -> tuple[AuthChallenge | None, str]:
    """The best challenge in a 401 (WWW-) or 407 (Proxy-Authenticate), and the header to answer with."""
    if response.code == 407:
        return strongest_challenge(response.headers.getlist("Proxy-Authenticate")), "Proxy-Authorization"
    return strongest_challenge(response.headers.getlist("WWW-Authenticate")), "Authorization"
