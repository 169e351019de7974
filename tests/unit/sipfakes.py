"""Helpers to play the far side of SIP exchanges in unit tests."""

from __future__ import annotations

from typing import Any

from sipmessage import URI, Address, Parameters, Request, Response

from bridge.sip.addressing import udp
from bridge.sip.agent import SipAgent
from bridge.sip.call import CallSettings
from bridge.sip.digest import Credentials
from bridge.sip.message import build_response, parse_message, serialize
from bridge.sip.sdp import Direction, build_offer

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
    return message


def respond(
    request: Request,
    code: int,
    phrase: str,
    *,
    to_tag: str | None = "far1",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    response: Response = build_response(request, code, phrase, to_tag=to_tag)
    for name, value in (headers or {}).items():
        response.headers.add(name, value)
    response.body = body
    return serialize(response)


def in_dialog_request(method: str, ours: Request, answer: bytes, cseq: int = 1) -> bytes:
    """A request from the far end within the dialog set up by ``answer`` to ``ours``."""
    answered = parse_message(answer)
    request = Request(method, ours.contact[0].uri)
    request.headers.add("Via", f"SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKfar{method.lower()}{cseq}")
    request.from_address = answered.to_address
    request.to_address = Address(uri=ours.from_address.uri, parameters=ours.from_address.parameters)
    request.call_id = ours.call_id
    request.headers.add("CSeq", f"{cseq} {method}")
    request.max_forwards = 70
    return serialize(request)


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
