"""SIP: the parser on mutated messages, and a call fed mutated and reordered responses and requests
between timer firings. Only SipParseError leaves the parser; nothing leaves the agent; the call
always ends (one CallEnded event) once hung up and its timers run out; the agent keeps no state."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from bridge.sip.agent import SipAgent
from bridge.sip.call import CallPhase, OutboundCall
from bridge.sip.events import CallEnded
from bridge.sip.message import SipParseError, parse_message
from tests.support import sip_text
from tests.support.fuzz_budget import FUZZ
from tests.support.mutate import mutated
from tests.support.sipfakes import DOMAIN, SDP_ANSWER, call_settings

INVITE = (
    b"INVITE sip:uas@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.2:5062;branch=z9hG4bKabc\r\n"
    b"From: <sip:bridge@example.com>;tag=a1\r\nTo: <sip:uas@example.com>\r\nCall-ID: c1@test\r\n"
    b"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:bridge@192.0.2.2:5062>\r\n"
    b"Content-Type: application/sdp\r\nContent-Length: " + str(len(SDP_ANSWER)).encode() + b"\r\n\r\n" + SDP_ANSWER
)
RESPONSE = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.2:5062;branch=z9hG4bKabc\r\nTo: <sip:uas@x>;tag=9\r\n" \
    b"From: <sip:b@x>;tag=a1\r\nCall-ID: c1@test\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"  # fmt: skip
CODES = [100, 180, 183, 200, 302, 401, 407, 403, 404, 481, 486, 487, 488, 491, 500, 503, 603]
CHALLENGES = {401: "WWW-Authenticate", 407: "Proxy-Authenticate"}
FAR_METHODS = ["BYE", "INVITE", "UPDATE", "OPTIONS", "INFO", "ACK", "CANCEL", "NOTIFY"]


@FUZZ
@given(st.one_of(st.binary(max_size=2000), mutated(INVITE), mutated(RESPONSE)))
def test_the_parser_raises_only_its_own_error(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        parse_message(data)


def _response_to(sent: bytes, draw: st.DrawFn) -> bytes:
    """A response to something the bridge sent, with the fields a broken or hostile peer gets wrong."""
    request = sip_text.parse(sent)
    code = draw(st.sampled_from(CODES))
    headers: list[tuple[str, str]] = []
    if code in CHALLENGES:
        qop = draw(st.sampled_from(['qop="auth"', 'qop="auth,auth-int"', "", 'qop="auth-int"']))
        headers.append((CHALLENGES[code], f'Digest realm="example.com", nonce="{draw(st.text(max_size=8))}", {qop}'))
    if code == 200:
        headers.append(("Contact", draw(st.sampled_from(["<sip:uas@192.0.2.9:5080>", "<sips:x>", "garbage", "*"]))))
        headers.append(("Record-Route", draw(st.sampled_from(["<sip:192.0.2.50;lr>", "<sip:[::1];lr>", "<>"]))))
    if code == 302:
        headers.append(("Contact", "<sip:moved@192.0.2.7>"))
    body = draw(st.sampled_from([b"", SDP_ANSWER, SDP_ANSWER.replace(b"RTP/AVP 0", b"RTP/AVP 99"), b"v=0\r\n"]))
    if body:
        headers.append(("Content-Type", "application/sdp"))
    tag = draw(st.sampled_from(["far1", "far2", None]))
    response = sip_text.response(request, code, "Phrase", tag, headers, body)
    if draw(st.booleans()):
        response = response.replace(b"CSeq: ", draw(st.sampled_from([b"CSeq: 9", b"CSeq: 1 BYE\r\nX: ", b"CSeq: "])), 1)
    return response


def _far_request(sent: bytes, draw: st.DrawFn) -> bytes:
    request = sip_text.parse(sent)
    method = draw(st.sampled_from(FAR_METHODS))
    headers = [
        ("Via", f"SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK{draw(st.integers(0, 3))}"),
        ("From", request.all("to")[0] + draw(st.sampled_from([";tag=far1", ";tag=zz", ""]))),
        ("To", request.all("from")[0]),
        ("Call-ID", draw(st.sampled_from([request.header("call-id"), "other@x"]))),
        ("CSeq", f"{draw(st.integers(0, 2**31))} {method}"),
    ]
    body = SDP_ANSWER if method in ("INVITE", "UPDATE") and draw(st.booleans()) else b""
    return sip_text.render(f"{method} sip:bridge@192.0.2.2:5062 SIP/2.0", headers, body)


@FUZZ
@given(st.data())
def test_a_call_fed_anything_ends_and_leaves_no_state(data: st.DataObject) -> None:
    agent = SipAgent()
    call = OutboundCall(call_settings(answer_timeout=30.0))
    agent.add_call(call, 0.0)
    now, sent = 0.0, [d for d, _ in agent.outbox]
    agent.outbox.clear()
    events: list[object] = []
    for _ in range(data.draw(st.integers(1, 12))):
        step = data.draw(st.sampled_from(["response", "mutated", "request", "time", "hangup"]))
        if step in ("response", "mutated", "request") and sent:
            target = data.draw(st.sampled_from(sent))
            message = _far_request(target, data.draw) if step == "request" else _response_to(target, data.draw)
            if step == "mutated":
                message = data.draw(mutated(message))
            agent.receive_datagram(message, DOMAIN, now)
        elif step == "time":
            now += data.draw(st.floats(0.0, 40.0))
            agent.handle_timer(now)
        elif step == "hangup":
            agent.hangup(call.call_id, now)
        sent += [d for d, _ in agent.outbox]
        agent.outbox.clear()
        events += [event for _, event in agent.events]
        agent.events.clear()
    agent.hangup(call.call_id, now)
    while (deadline := agent.get_timer()) is not None and deadline < now + 3600:
        now = max(now, deadline)
        agent.handle_timer(now)
    events += [event for _, event in agent.events]
    assert call.phase is CallPhase.TERMINATED, call.phase
    assert sum(isinstance(event, CallEnded) for event in events) == 1
    assert agent.get_timer() is None  # no transaction or timer left behind
