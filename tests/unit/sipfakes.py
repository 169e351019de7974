"""Helpers to play the far side of SIP exchanges in unit tests.

What the far side says is built as text by ``tests/support/sip_text.py`` (written from RFC 3261,
not from the bridge's builder or serializer); what the bridge sent is read with the bridge's
parser only to get at its fields.
"""

from __future__ import annotations

from typing import Any

from sipmessage import URI, Address, Parameters, Request

from bridge.sip.addressing import udp
from bridge.sip.agent import SipAgent
from bridge.sip.call import CallSettings
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
