"""Stream framing (RFC 3261 section 18.3) and transactions over reliable transports."""

from __future__ import annotations

import pytest

from bridge.sip.addressing import Destination, Transport
from bridge.sip.framing import MAX_BODY_BYTES, FramingError, StreamFramer
from bridge.sip.timers import TimerSettings
from bridge.sip.transaction import ClientTransaction
from tests.support.sipfakes import make_request

MESSAGE = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 4\r\n\r\nbody"


def test_messages_split_across_reads_and_packed_together() -> None:
    framer = StreamFramer()
    stream = MESSAGE + b"\r\n\r\n" + MESSAGE.replace(b"Content-Length: 4", b"l: 4")
    out: list[bytes] = []
    for i in range(0, len(stream), 5):
        out += framer.feed(stream[i : i + 5])
    assert len(out) == 2 and out[0] == MESSAGE and out[1].endswith(b"body")
    assert framer.pings == 1  # the CRLFCRLF keep-alive between them


@pytest.mark.parametrize(
    "data",
    [
        MESSAGE.replace(b"Content-Length: 4\r\n", b""),
        MESSAGE.replace(b"Content-Length: 4", f"Content-Length: {MAX_BODY_BYTES + 1}".encode()),
        b"X" * 20000,
        MESSAGE.replace(b"Content-Length: 4\r\n", b"Content-Length: 4\r\nContent-Length: 5\r\n"),
    ],
)
def test_unframeable_streams_raise(data: bytes) -> None:
    with pytest.raises(FramingError):
        StreamFramer().feed(data)


def test_reliable_transport_has_no_retransmissions_and_no_wait_states() -> None:
    tcp = Destination(Transport.TCP, "192.0.2.1", 5060)
    transaction = ClientTransaction(make_request("BYE"), tcp, 0.0, TimerSettings())
    transaction.outbox.clear()
    assert transaction.get_timer() == 32.0  # only Timer F
    invite = ClientTransaction(make_request("INVITE"), tcp, 0.0, TimerSettings())
    assert invite.get_timer() == 32.0  # only Timer B


def test_transport_failure_fails_the_transaction() -> None:
    tls = Destination(Transport.TLS, "192.0.2.1", 5061, "sip.example.com")
    transaction = ClientTransaction(make_request("INVITE"), tls, 0.0, TimerSettings())
    transaction.fail_transport()
    assert transaction.terminated and transaction.timed_out and transaction.transport_failed


def test_content_length_anywhere_in_the_headers() -> None:
    middle = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\nokOPT"
    assert StreamFramer().feed(middle) == [middle[:-3]]
