"""REGISTER with digest, 423, refresh before expiry, unREGISTER (fake clock)."""

from __future__ import annotations

from sipmessage import URI, Address

from bridge.sip.addressing import udp
from bridge.sip.agent import SipAgent
from bridge.sip.digest import Credentials
from bridge.sip.registration import (
    Registered,
    Registration,
    RegistrationFailed,
    RegistrationSettings,
    Unregistered,
)
from tests.support.sipfakes import parse_request, respond, take_events, take_sent

REGISTRAR = udp("192.0.2.1", 5060)
CHALLENGE = {"WWW-Authenticate": 'Digest realm="example.com", nonce="r1", qop="auth"'}


def new_registration(expires: int = 600) -> SipAgent:
    settings = RegistrationSettings(
        call_id="reg-1@test",
        registrar=URI.parse("sip:example.com"),
        aor=URI.parse("sip:bridge@example.com"),
        contact=Address(uri=URI.parse("sip:bridge@192.0.2.2:5062")),
        destination=REGISTRAR,
        local_address=("192.0.2.2", 5062),
        credentials=Credentials("bridge", "pw"),
        expires=expires,
    )
    agent = SipAgent()
    agent.add_registration(Registration(settings), 0.0)
    return agent


def register_ok(agent: SipAgent, granted: str = "300") -> None:
    first = parse_request(take_sent(agent)[0])
    agent.receive_datagram(respond(first, 401, "Unauthorized", headers=CHALLENGE), REGISTRAR, 0.1)
    second = parse_request(take_sent(agent)[0])
    assert 'uri="sip:example.com"' in (second.headers.get("Authorization") or "")
    assert second.cseq.sequence == first.cseq.sequence + 1 and second.call_id == first.call_id
    contact = {"Contact": f"<sip:bridge@192.0.2.2:5062>;expires={granted}"}
    agent.receive_datagram(respond(second, 200, "OK", headers=contact), REGISTRAR, 0.2)


def test_register_answers_401_and_reports_the_granted_interval() -> None:
    agent = new_registration()
    request = parse_request(agent.outbox[0][0])
    assert request.method == "REGISTER" and str(request.uri) == "sip:example.com"
    assert request.expires == 600 and request.contact[0].parameters["expires"] == "600"
    register_ok(agent)
    assert take_events(agent) == [Registered(300)]


def test_binding_is_refreshed_at_80_percent_of_the_grant() -> None:
    agent = new_registration()
    register_ok(agent, granted="300")
    agent.handle_timer(0.2 + 5.0)  # Timer K of the REGISTER transaction
    assert agent.get_timer() == 0.2 + 240
    agent.handle_timer(240.2)
    (refresh,) = [parse_request(d) for d in take_sent(agent)]
    assert refresh.method == "REGISTER" and refresh.expires == 600


def test_423_raises_the_interval_to_min_expires() -> None:
    agent = new_registration(expires=60)
    first = parse_request(take_sent(agent)[0])
    agent.receive_datagram(respond(first, 423, "Interval Too Brief", headers={"Min-Expires": "120"}), REGISTRAR, 0.1)
    assert parse_request(take_sent(agent)[0]).expires == 120


def test_refused_credentials_fail_without_loop() -> None:
    agent = new_registration()
    first = parse_request(take_sent(agent)[0])
    agent.receive_datagram(respond(first, 401, "Unauthorized", headers=CHALLENGE), REGISTRAR, 0.1)
    second = parse_request(take_sent(agent)[0])
    agent.receive_datagram(respond(second, 401, "Unauthorized", headers=CHALLENGE), REGISTRAR, 0.2)
    assert take_sent(agent) == []
    assert take_events(agent) == [RegistrationFailed(401, "Unauthorized")]
    agent.handle_timer(0.2 + 5.0)  # Timer K
    assert agent.registrations == {}


def test_unregister_sends_expires_zero_and_finishes() -> None:
    agent = new_registration()
    register_ok(agent)
    take_events(agent)
    agent.unregister("reg-1@test", 10.0)
    (request,) = [parse_request(d) for d in take_sent(agent)]
    assert request.expires == 0 and request.contact[0].parameters["expires"] == "0"
    agent.receive_datagram(respond(request, 200, "OK"), REGISTRAR, 10.1)
    assert take_events(agent) == [Unregistered()]
    agent.handle_timer(10.1 + 5.0)  # Timer K
    assert agent.registrations == {}


def test_registrar_silence_times_out() -> None:
    agent = new_registration()
    while (deadline := agent.get_timer()) is not None and deadline < 40:
        agent.handle_timer(deadline)
    assert take_events(agent) == [RegistrationFailed(408, "Request Timeout")]
