"""Where a caller may make the bridge connect (security review 2026-12-07, finding 4): link-local and
metadata addresses never, also when a DNS name resolves to one; other addresses only within
rtmp.allowed_networks / sip.allowed_networks when they are set; a failed connection tells the API
only refused, timed out or unreachable. Judged by a listener that counts the connections it got."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bridge.calls.services import Services
from bridge.config import BridgeConfig
from bridge.net.netpolicy import NetworkPolicy
from bridge.rtmp.publisher import RtmpPublisher, RtmpPublishError, RtmpRefused
from bridge.rtmp.url import parse_target
from bridge.sip.addressing import Transport
from bridge.sip.dns import ResolveError, SipResolver
from rtp.ports import PortAllocator
from tests.support.dns_server import TestDnsServer

ACCEPTED: list[str] = []


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("169.254.169.254", True),
        ("::ffff:169.254.169.254", True),
        ("[fe80::1]", True),
        ("fe80::1%eth0", True),
        ("fd00:ec2::254", True),
        ("127.0.0.1", False),
        ("203.0.113.7", False),
        ("cdn.example.com", False),  # a name: its addresses are checked at connect time
    ],
)
def test_always_refused(address: str, refused: bool) -> None:
    assert (NetworkPolicy().refusal(address) is not None) is refused


def test_allowed_networks_narrow_the_rest() -> None:
    policy = NetworkPolicy(["10.0.0.0/8", "2001:db8::/32"], "rtmp.allowed_networks")
    assert policy.refusal("10.1.2.3") is None and policy.refusal("2001:db8::5") is None
    assert "rtmp.allowed_networks" in (policy.refusal("127.0.0.1") or "")
    assert policy.refusal("169.254.1.1") is not None


@pytest.fixture
async def listener() -> AsyncIterator[int]:
    """A TCP listener on 127.0.0.1 that counts connections (the would-be RTMP server)."""

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ACCEPTED.append(str(writer.get_extra_info("peername")))
        writer.close()

    ACCEPTED.clear()
    server = await asyncio.start_server(accepted, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def _publish(url: str, refusal: Any = None) -> RtmpPublishError:
    failures: list[RtmpPublishError] = []
    publisher = RtmpPublisher(parse_target(url, "s"), failures.append, connect_timeout=3, refusal=refusal)
    await publisher.run()
    await asyncio.sleep(0.05)
    assert failures, "the publish did not fail"
    return failures[0]


async def test_a_name_that_resolves_to_a_refused_network_is_not_connected(listener: int) -> None:
    policy = NetworkPolicy(["10.0.0.0/8"], "rtmp.allowed_networks")
    failure = await _publish(f"rtmp://localhost:{listener}/live", policy.refusal)  # the hosts file: 127.0.0.1
    assert isinstance(failure, RtmpRefused) and "rtmp.allowed_networks" in str(failure)
    assert ACCEPTED == []
    assert isinstance(await _publish(f"rtmp://localhost:{listener}/live", NetworkPolicy().refusal), RtmpPublishError)
    assert len(ACCEPTED) == 1  # the same name without the narrowing: connected


@pytest.fixture
def metadata_by_name(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A resolver that maps metadata.test to 169.254.169.254 (a DNS rebinding or a hostile zone)."""
    real = asyncio.base_events.BaseEventLoop.getaddrinfo

    async def getaddrinfo(self: Any, host: str, port: Any, **kwargs: Any) -> Any:
        if host == "metadata.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]
        return await real(self, host, port, **kwargs)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", getaddrinfo)
    yield


async def test_rtmp_name_resolving_to_metadata_is_refused(metadata_by_name: None) -> None:
    failure = await _publish("rtmp://metadata.test/live", NetworkPolicy().refusal)
    assert isinstance(failure, RtmpRefused) and "metadata" in str(failure)


async def test_a_failed_connection_tells_the_api_only_refused(listener: int) -> None:
    closed_port = listener + 1 if listener < 65535 else listener - 1
    failure = await _publish(f"rtmp://127.0.0.1:{closed_port}/live")
    assert str(failure) == "RTMP connection to 127.0.0.1 failed: refused"  # no port, no errno text


async def test_sip_domain_name_resolving_to_metadata_is_refused() -> None:
    dns = TestDnsServer({("meta.sip.test", "A"): ["169.254.169.254"], ("ok.sip.test", "A"): ["127.0.0.1"]})
    try:
        config = BridgeConfig()
        services = Services(config, PortAllocator(*config.rtp.ports), resolver=SipResolver([("127.0.0.1", dns.port)]))
        with pytest.raises(ResolveError, match="link-local or cloud metadata"):
            await services.resolve_sip("meta.sip.test", None, Transport.UDP)
        assert [t.host for t in await services.resolve_sip("ok.sip.test", None, Transport.UDP)] == ["127.0.0.1"]
        assert "A meta.sip.test." in dns.queries  # it was resolved, then refused
    finally:
        dns.stop()
