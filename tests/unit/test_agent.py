"""The agent never raises on bad input and answers stray requests sensibly."""

from __future__ import annotations

import pytest

from bridge.sip.addressing import udp
from bridge.sip.agent import SipAgent

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
def test_malformed_datagrams_become_drop_records(datagram: bytes) -> None:
    agent = SipAgent()
    agent.receive_datagram(datagram, SOURCE, 0.0)
    assert agent.outbox == []
    assert len(agent.dropped) == 1 and agent.dropped[0].source == SOURCE


def test_keepalive_crlf_is_ignored_silently() -> None:
    agent = SipAgent()
    agent.receive_datagram(b"\r\n\r\n", SOURCE, 0.0)
    assert agent.outbox == [] and agent.dropped == []


def test_out_of_dialog_options_is_answered_200_to_the_source() -> None:
    agent = SipAgent()
    agent.receive_datagram(OPTIONS, SOURCE, 0.0)
    ((response, destination),) = agent.outbox
    assert response.startswith(b"SIP/2.0 200 OK") and destination == SOURCE


def test_incoming_invite_is_refused_403() -> None:
    agent = SipAgent()
    invite = OPTIONS.replace(b"OPTIONS", b"INVITE").replace(b"z9hG4bKping", b"z9hG4bKinv")
    agent.receive_datagram(invite, SOURCE, 0.0)
    assert agent.outbox[0][0].startswith(b"SIP/2.0 403")


def test_response_for_unknown_call_is_dropped() -> None:
    agent = SipAgent()
    response = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:a@b>;tag=2\r\nCall-ID: nope\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    agent.receive_datagram(response, SOURCE, 0.0)
    assert agent.outbox == [] and "unknown call" in agent.dropped[0].reason
