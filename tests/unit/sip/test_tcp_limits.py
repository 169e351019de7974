"""The SIP TCP listener bounds what anyone can hold open: idle time, a cap per address and in all,
and a stranger's connection closed after its first message for no call (sip.unknown_requests = "drop").
Judged from the client's side of real loopback connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bridge.net.connlimit import ConnectionLimiter, Throttle
from bridge.sip.agent import SipAgent
from bridge.sip.inbound import InboundPolicy
from bridge.sip.transport import SipTransport

OPTIONS = (
    b"OPTIONS sip:bridge@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-scan-1\r\n"
    b"From: <sip:scanner@127.0.0.1>;tag=1\r\nTo: <sip:bridge@127.0.0.1>\r\n"
    b"Call-ID: scan-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


async def _listener(mode: str, total: int, per_source: int, idle: float) -> SipTransport:
    agent = SipAgent(policy=InboundPolicy(mode))  # type: ignore[arg-type]
    sip = await SipTransport.listen(agent, "127.0.0.1", 0)
    sip.configure_tcp(total, per_source, idle)
    return sip


@pytest.fixture
async def dropping() -> AsyncIterator[SipTransport]:
    sip = await _listener("drop", 3, 2, 0.4)
    yield sip
    sip.close()


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the server closed the connection (EOF or reset) within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            return await reader.read(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def test_an_idle_connection_is_closed_after_the_idle_time(dropping: SipTransport) -> None:
    port = dropping.local_address[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert not await _closed_within(reader, 0.2)  # still open before the idle time
    assert await _closed_within(reader, 1.0)
    writer.close()
    await asyncio.sleep(0.05)
    assert dropping.tcp_idle_closed == 1 and dropping.tcp_limiter.count == 0


async def test_connections_beyond_the_cap_per_address_are_refused(dropping: SipTransport) -> None:
    port = dropping.local_address[1]
    kept = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await _closed_within(reader, 0.5)  # the third from 127.0.0.1
    assert not await _closed_within(kept[0][0], 0.1)  # the first two are served
    assert dropping.tcp_limiter.refused["per_source"] == 1
    for _, w in [*kept, (reader, writer)]:
        w.close()


async def test_a_strangers_connection_closes_after_its_first_message(dropping: SipTransport) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", dropping.local_address[1])
    writer.write(OPTIONS)
    assert await _closed_within(reader, 0.3)  # closed at once, unanswered (EOF with no bytes)
    writer.close()


async def test_answered_requests_keep_the_connection_in_reply_mode() -> None:
    sip = await _listener("reply", 3, 2, 0.6)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", sip.local_address[1])
        for _ in range(3):  # each complete message restarts the idle time
            writer.write(OPTIONS.replace(b"scan-1", b"scan-2"))
            async with asyncio.timeout(1):
                assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"SIP/2.0 200")
            await asyncio.sleep(0.35)
        assert await _closed_within(reader, 1.0)  # then idle: closed
        writer.close()
    finally:
        sip.close()


def test_limiter_counts_per_source_and_in_all() -> None:
    limiter = ConnectionLimiter("x", total=3, per_source=2)
    assert limiter.admit("a") and limiter.admit("a") and not limiter.admit("a")
    assert limiter.admit("b") and not limiter.admit("c")
    assert limiter.refused == {"per_source": 1, "total": 1}
    limiter.release("a")
    limiter.release("never-admitted")
    assert limiter.count == 2 and limiter.admit("c")


def test_throttle_allows_one_per_interval_and_counts_the_rest() -> None:
    throttle = Throttle(60)
    assert throttle.allow(0.0) and not throttle.allow(10.0) and not throttle.allow(59.0)
    assert throttle.allow(60.0) and throttle.take_suppressed() == 2


def test_accept_errors_are_counted_and_logged_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    import errno
    import logging

    from bridge.net.connlimit import AcceptErrors

    errors = AcceptErrors()
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.ERROR, logger="bridge.connections"):
            for _ in range(1000):
                context = {"message": "socket.accept() out of system resource", "exception": OSError(errno.EMFILE, "x")}
                errors.handle(loop, context)
    finally:
        loop.close()
    assert errors.count == 1000
    assert len([r for r in caplog.records if r.name == "bridge.connections"]) == 1
