"""Helpers to play the far side of SIP exchanges in unit tests.

What the far side says is built as text by ``tests/support/sip_text.py`` (written from RFC 3261,
not from the bridge's builder or serializer); what the bridge sent is read with the bridge's
parser only to get at its fields.
"""

from __future__ import annotations

from typing import Any

from sipmessage import URI, Address, CSeq, Parameters, Request, Via

from bridge.sip.addressing import Destination, udp
from bridge.sip.agent import SipAgent
from bridge.sip.call import CallSettings, OutboundCall
from bridge.sip.digest import Credentials
from bridge.sip.message import parse_message
from bridge.sip.sdp import Direction, build_offer
from tests.support import sip_text

DOMAIN = udp("192.0.2.1", 5060)


def call_settings(**overrides: Any) -> CallSettings:
    """The call the SIP unit tests place: sip:uas@example.com via DOMAIN with a recvonly PCMU offer."""
    fields: dict[str, Any] = {
        "call_id": "c1@test",
        "request_uri": URI.parse("sip:uas@example.com"),
        "from_uri": URI.parse("sip:bridge@example.com"),
        "destination": DOMAIN,
        "local_address": ("192.0.2.2", 5062),
        "offer": build_offer("192.0.2.2", 20000, Direction.RECVONLY, 1),
        "credentials": Credentials("bridge", "pw"),
    }
    return CallSettings(**{**fields, **overrides})


SDP_ANSWER = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
)


def parse_request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    message.raw = data  # type: ignore[attr-defined]  # what respond() answers, read as text
    return message


def _as_text(request: Request) -> sip_text.SipText:
    """The request as the far end reads it: its bytes on the wire (or, for a request a test built
    without sending it, sipmessage's own rendering of it)."""
    raw = getattr(request, "raw", None)
    return sip_text.parse(raw if raw is not None else bytes(request))


def respond(
    request: Request,
    code: int,
    phrase: str,
    *,
    to_tag: str | None = "far1",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    extra = list((headers or {}).items())
    return sip_text.response(_as_text(request), code, phrase, to_tag, extra, body)


def in_dialog_request(method: str, ours: Request, answer: bytes, cseq: int = 1) -> bytes:
    """A request from the far end within the dialog set up by ``answer`` to ``ours`` (RFC 3261 §12.2.1.1:
    to our Contact, From = the answer's To, To = our From, our Call-ID, a CSeq of its own)."""
    answered, sent = sip_text.parse(answer), _as_text(ours)
    contact = sent.header("contact").strip("<>").split(">")[0]
    headers = [
        ("Via", f"SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKfar{method.lower()}{cseq}"),
        ("From", answered.header("to")),
        ("To", sent.header("from")),
        ("Call-ID", sent.header("call-id")),
        ("CSeq", f"{cseq} {method}"),
        ("Max-Forwards", "70"),
    ]
    return sip_text.render(f"{method} {contact} SIP/2.0", headers)


def with_tag(address: Address, tag: str) -> Address:
    return Address(uri=address.uri, name=address.name, parameters=Parameters(tag=tag))


def take_datagrams(agent: SipAgent) -> list[tuple[bytes, tuple[str, int]]]:
    """What the agent has queued to send (datagram, destination), emptying its outbox."""
    out, agent.outbox = agent.outbox, []
    return out


def take_sent(agent: SipAgent) -> list[bytes]:
    """The datagrams the agent has queued to send, emptying its outbox."""
    return [data for data, _ in take_datagrams(agent)]


def take_events(agent: SipAgent) -> list[object]:
    """The events the agent has raised, emptying its queue."""
    out, agent.events = agent.events, []
    return [event for _, event in out]


def make_request(method: str) -> Request:
    request = Request(method, URI.parse("sip:bob@example.com"))
    request.via = [Via("UDP", "192.0.2.2", 5060, Parameters(branch="z9hG4bKtest" + method))]
    request.from_address = Address(uri=URI.parse("sip:alice@example.com"), parameters=Parameters(tag="a"))
    request.to_address = Address(uri=URI.parse("sip:bob@example.com"))
    request.call_id = "call-1"
    request.cseq = CSeq(1, method)
    request.max_forwards = 70
    return request


CHALLENGE = {"Proxy-Authenticate": 'Digest realm="example.com", nonce="n1", qop="auth"'}
ROUTES = {"Record-Route": "<sip:192.0.2.50:5070;lr>, <sip:192.0.2.1;lr>", "Contact": "<sip:uas@192.0.2.9:5080>"}


def new_call(
    answer_timeout: float = 60.0, alternates: list[Destination] | None = None
) -> tuple[SipAgent, OutboundCall]:
    settings = call_settings(answer_timeout=answer_timeout, alternates=alternates or [])
    agent = SipAgent()
    call = OutboundCall(settings)
    agent.add_call(call, 0.0)
    return agent, call


def establish(agent: SipAgent) -> tuple[bytes, bytes]:
    """Run INVITE -> 407 -> INVITE -> 180 -> 200; return (authenticated INVITE, 200 OK)."""
    invite = parse_request(take_datagrams(agent)[0][0])
    agent.receive_datagram(respond(invite, 407, "Proxy Authentication Required", headers=CHALLENGE), DOMAIN, 0.1)
    sent = take_datagrams(agent)
    assert [parse_request(d).method for d, _ in sent] == ["ACK", "INVITE"]
    second = parse_request(sent[1][0])
    agent.receive_datagram(respond(second, 180, "Ringing"), DOMAIN, 0.2)
    ok = respond(second, 200, "OK", headers=ROUTES, body=SDP_ANSWER)
    agent.receive_datagram(ok, DOMAIN, 0.3)
    return sent[1][0], ok
