"""Registration before calling (RFC 3261 section 10), client side, sans-IO.

REGISTER sip:<domain> with To/From = our AOR and our Contact; digest answers to
401/407 (section 22.2); 423 Interval Too Brief raises the interval to Min-Expires
(section 10.2.8); the binding is refreshed before it expires; :meth:`unregister`
removes it (expires=0, section 10.2.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from sipmessage import URI, Address, CSeq, Parameters, Request, Response, Via

from bridge.sip.addressing import Destination, bracket
from bridge.sip.digest import Credentials, DigestClient, DigestError, strongest_challenge
from bridge.sip.ladder import Ladder
from bridge.sip.message import branch_of, new_branch, new_tag
from bridge.sip.timers import TimerSettings
from bridge.sip.transaction import ClientTransaction

_EXPIRES_PARAM = re.compile(r"^\d+$")
REFRESH_MARGIN = 0.8  # refresh after 80 % of the granted interval


class RegistrationState(Enum):
    REGISTERING = "registering"
    REGISTERED = "registered"
    UNREGISTERING = "unregistering"
    UNREGISTERED = "unregistered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Registered:
    expires: int


@dataclass(frozen=True, slots=True)
class RegistrationFailed:
    code: int | None
    phrase: str

    def describe(self) -> str:
        return (
            f"registration failed ({self.code} {self.phrase})" if self.code else f"registration failed: {self.phrase}"
        )


@dataclass(frozen=True, slots=True)
class Unregistered:
    pass


RegistrationEvent = Registered | RegistrationFailed | Unregistered


@dataclass(slots=True)
class RegistrationSettings:
    call_id: str
    registrar: URI
    aor: URI
    contact: Address
    destination: Destination
    local_address: tuple[str, int]
    credentials: Credentials
    expires: int = 3600
    user_agent: str = "sip-rtmp-bridge"
    timers: TimerSettings | None = None


class Registration:
    """One binding of our Contact to the AOR for the duration of a call."""

    def __init__(self, settings: RegistrationSettings) -> None:
        self.settings = settings
        self.call_id = settings.call_id
        self.timers = settings.timers or TimerSettings()
        self.state = RegistrationState.REGISTERING
        self.events: list[RegistrationEvent] = []
        self.outbox: list[tuple[bytes, Destination]] = []
        self.ladder = Ladder()
        self._tag = new_tag()
        self._cseq = 0
        self._expires = settings.expires
        self._digest = DigestClient(settings.credentials)
        self._auth: tuple[str, str] | None = None
        self._challenges = 0
        self._transaction: ClientTransaction | None = None
        self._refresh_at: float | None = None

    @property
    def finished(self) -> bool:
        idle = self._transaction is None or self._transaction.terminated
        return self.state in (RegistrationState.UNREGISTERED, RegistrationState.FAILED) and idle

    def start(self, now: float) -> None:
        self._send(now, self._expires)

    def unregister(self, now: float) -> None:
        if self.state in (RegistrationState.REGISTERED, RegistrationState.REGISTERING):
            self.state = RegistrationState.UNREGISTERING
            self._refresh_at = None
            self._challenges = 0
            self._send(now, 0)

    def get_timer(self) -> float | None:
        present = [t for t in (self._refresh_at, self._transaction and self._transaction.get_timer()) if t]
        return min(present) if present else None

    def handle_timer(self, now: float) -> None:
        transaction = self._transaction
        if transaction is not None and (deadline := transaction.get_timer()) is not None and now >= deadline:
            transaction.handle_timer(now)
            self._collect()
            if transaction.timed_out:
                self._fail(408, "Request Timeout")
        if self._refresh_at is not None and now >= self._refresh_at:
            self._refresh_at = None
            self._challenges = 0
            self._send(now, self._expires)

    def transport_failed(self, destination: Destination, now: float) -> None:
        transaction = self._transaction
        if transaction is None or transaction.terminated:
            return
        if (transaction.destination.transport, transaction.destination.address) == (
            destination.transport,
            destination.address,
        ):
            transaction.fail_transport()
            self._fail(503, "Service Unavailable (transport error)")

    def receive_response(self, response: Response, now: float) -> None:
        transaction = self._transaction
        if transaction is None or branch_of(response) != transaction.branch:
            return
        passed = transaction.receive_response(response, now)
        self._collect()
        if passed is None or passed.code < 200:
            return
        self.ladder.record("in", passed, now)
        if passed.code < 300:
            self._on_success(passed, now)
        elif passed.code in (401, 407) and self._answer(passed):
            self._send(now, 0 if self.state is RegistrationState.UNREGISTERING else self._expires)
        elif passed.code == 423 and self._raise_interval(passed):
            self._send(now, self._expires)
        else:
            self._fail(passed.code, passed.phrase)

    # -- internals --------------------------------------------------------------------

    def _send(self, now: float, expires: int) -> None:
        self._cseq += 1
        host, port = self.settings.local_address
        transport = self.settings.destination.transport
        request = Request("REGISTER", self.settings.registrar)
        request.via = [Via(transport.value, bracket(host), port, Parameters(branch=new_branch(), rport=None))]
        request.max_forwards = 70
        request.from_address = Address(uri=self.settings.aor, parameters=Parameters(tag=self._tag))
        request.to_address = Address(uri=self.settings.aor)
        request.call_id = self.call_id
        request.cseq = CSeq(sequence=self._cseq, method="REGISTER")
        contact = self.settings.contact
        request.contact = [Address(uri=contact.uri, parameters=contact.parameters.replace(expires=str(expires)))]
        request.expires = expires
        request.user_agent = self.settings.user_agent
        if self._auth is not None:
            request.headers.set(*self._auth)
        self._transaction = ClientTransaction(request, self.settings.destination, now, self.timers)
        self.ladder.record("out", request, now)
        self._collect()

    def _answer(self, response: Response) -> bool:
        """Answer a challenge once per request (a repeated one means our credentials are wrong)."""
        header = "Proxy-Authorization" if response.code == 407 else "Authorization"
        source = "Proxy-Authenticate" if response.code == 407 else "WWW-Authenticate"
        challenge = strongest_challenge(response.headers.getlist(source))
        stale = challenge is not None and (challenge.parameters.get("stale") or "").lower() == "true"
        if challenge is None or (self._challenges >= 1 and not stale):
            return False
        self._challenges += 0 if stale else 1
        try:
            answer = self._digest.answer(challenge, "REGISTER", str(self.settings.registrar))
        except DigestError:
            return False
        self._auth = (header, str(answer))
        return True

    def _raise_interval(self, response: Response) -> bool:
        minimum = response.min_expires
        if minimum is None or minimum <= self._expires:
            return False
        self._expires = minimum
        return True

    def _on_success(self, response: Response, now: float) -> None:
        self._challenges = 0
        if self.state is RegistrationState.UNREGISTERING:
            self.state = RegistrationState.UNREGISTERED
            self.events.append(Unregistered())
            return
        granted = self._granted_expires(response)
        self.state = RegistrationState.REGISTERED
        self._refresh_at = now + granted * REFRESH_MARGIN
        self.events.append(Registered(granted))

    def _granted_expires(self, response: Response) -> int:
        """The interval the registrar granted our Contact (section 10.2.4), else Expires, else ours."""
        ours = self.settings.contact.uri
        for contact in response.contact:
            value = contact.parameters.get("expires")
            if (
                contact.uri.host == ours.host
                and contact.uri.port == ours.port
                and value
                and _EXPIRES_PARAM.match(value)
            ):
                return int(value)
        return response.expires if response.expires is not None else self._expires

    def _fail(self, code: int | None, phrase: str) -> None:
        if self.state is RegistrationState.UNREGISTERING:
            self.state = RegistrationState.UNREGISTERED
            self.events.append(Unregistered())
            return
        self.state = RegistrationState.FAILED
        self._refresh_at = None
        self.events.append(RegistrationFailed(code, phrase))

    def _collect(self) -> None:
        if self._transaction is not None and self._transaction.outbox:
            self.outbox.extend(self._transaction.outbox)
            self._transaction.outbox.clear()
