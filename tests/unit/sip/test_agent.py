"""The agent never raises on bad input, drops what belongs to no call of ours from unknown sources,
and answers the rest statelessly and within a rate (bridge/sip/inbound.py)."""

from __future__ import annotations

import pytest

from bridge.sip.addressing import udp
from bridge.sip.agent import SipAgent
from bridge.sip.inbound import InboundPolicy, parse_networks

SOURCE = udp("192.0.2.7", 5060)
OPTIONS = (
    b"OPTIONS sip:bridge@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKping\r\n"
    b"From: <sip:probe@192.0.2.7>;tag=p\r\nTo: <sip:bridge@192.0.2.2>\r\nCall-ID: ping-1\r\n"
    b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


@pytest.mark.parametrize(
    "datagram",
    [
        b"\xff\xfe\x00garbage",
        b"INVITE sip:x SIP/2.0\r\n\r\n",
        b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 99\r\n\r\nshort",
        b"no colon header\r\nfoo\r\n\r\n",
    ],
)
def test_malformed_datagrams_are_counted_not_answered(datagram: bytes) -> None:
    trusting = SipAgent(policy=InboundPolicy(trusted=parse_networks(["192.0.2.7"])))
    trusting.receive_datagram(datagram, SOURCE, 0.0)
    assert trusting.outbox == [] and dict(trusting.policy.drops) == {"unparsable": 1}
    agent = SipAgent()  # from an unknown source it is not even parsed
    agent.receive_datagram(datagram, SOURCE, 0.0)
    assert agent.outbox == [] and dict(agent.policy.drops) == {"unknown source": 1}


def test_keepalive_crlf_is_ignored_silently() -> None:
    agent = SipAgent()
    agent.receive_datagram(b"\r\n\r\n", SOURCE, 0.0)
    assert agent.outbox == [] and not agent.policy.drops


def test_oversized_datagrams_are_not_even_parsed() -> None:
    agent = SipAgent(policy=InboundPolicy(max_message_bytes=4096))
    agent.receive_datagram(OPTIONS + b"x" * 5000, SOURCE, 0.0)
    assert agent.outbox == [] and dict(agent.policy.drops) == {"oversized": 1}


def test_by_default_requests_from_unknown_sources_get_no_answer_and_leave_no_state() -> None:
    agent = SipAgent()
    for index in range(1000):
        sweep = OPTIONS.replace(b"ping-1", b"sweep-%d" % index).replace(b"z9hG4bKping", b"z9hG4bK%d" % index)
        agent.receive_datagram(sweep, SOURCE, index * 0.001)
        agent.receive_datagram(sweep.replace(b"OPTIONS", b"INVITE"), SOURCE, index * 0.001)
    assert agent.outbox == [] and agent.policy.drops["unknown source"] == 2000
    assert agent._servers == {} and agent.get_timer() is None


def test_trusted_sources_get_stateless_answers_within_the_rate() -> None:
    agent = SipAgent(policy=InboundPolicy(trusted=parse_networks(["192.0.2.0/24"]), rate=10, burst=5))
    for index in range(20):
        agent.receive_datagram(OPTIONS.replace(b"ping-1", b"p%d" % index), SOURCE, 0.0)
    assert len(agent.outbox) == 5 and agent.policy.drops["rate limited"] == 15
    ((response, destination), *_rest) = agent.outbox
    assert response.startswith(b"SIP/2.0 200 OK") and destination == SOURCE
    agent.outbox.clear()
    agent.receive_datagram(OPTIONS.replace(b"ping-1", b"later"), SOURCE, 0.5)  # 5 tokens back after 0.5 s
    assert len(agent.outbox) == 1 and agent._servers == {}


def test_reply_mode_answers_anyone_an_invite_403() -> None:
    agent = SipAgent(policy=InboundPolicy(mode="reply"))
    invite = OPTIONS.replace(b"OPTIONS", b"INVITE").replace(b"z9hG4bKping", b"z9hG4bKinv")
    agent.receive_datagram(invite, SOURCE, 0.0)
    assert agent.outbox[0][0].startswith(b"SIP/2.0 403")


def test_the_log_gets_a_summary_at_most_once_a_minute() -> None:
    policy = InboundPolicy()
    for index in range(50):
        policy.drop("unknown source", f"198.51.100.{index}")
    first = policy.summary(0.0)
    assert first == (
        "SIP traffic dropped: 50 unknown source (from 198.51.100.0, 198.51.100.1, 198.51.100.10 and 47 more); "
        "at most one such line a minute"
    )
    policy.drop("unparsable", "198.51.100.1")
    assert policy.summary(30.0) is None and policy.summary(61.0) == (
        "SIP traffic dropped: 1 unparsable (from 198.51.100.1); at most one such line a minute"
    )
    assert policy.summary(200.0) is None  # nothing new


def test_response_for_unknown_call_is_dropped() -> None:
    agent = SipAgent(policy=InboundPolicy(mode="reply"))
    response = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:a@b>;tag=2\r\nCall-ID: nope\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    agent.receive_datagram(response, SOURCE, 0.0)
    assert agent.outbox == [] and dict(agent.policy.drops) == {"response for no call": 1}


def test_in_dialog_requests_of_our_calls_are_taken_from_any_address() -> None:
    """Providers send in-dialog requests from several addresses: the Call-ID decides, not the source."""
    from tests.support.sipfakes import establish, in_dialog_request, new_call, parse_request

    agent, _call = new_call()
    invite, ok = establish(agent)
    agent.outbox.clear()
    bye = in_dialog_request("BYE", parse_request(invite), ok, cseq=7)
    agent.receive_datagram(bye, udp("198.51.100.9", 5060), 1.0)
    assert agent.outbox and agent.outbox[0][0].startswith(b"SIP/2.0 200 OK")
    assert not agent.policy.drops
