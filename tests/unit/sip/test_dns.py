"""RFC 3263 server location against a DNS server on 127.0.0.1, and RFC 2782 ordering."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from bridge.sip.addressing import Destination, Transport
from bridge.sip.dns import ResolveError, SipResolver, SrvRecord, order_srv, srv_name
from tests.support.dns_server import TestDnsServer


@pytest.fixture
def server() -> Iterator[TestDnsServer]:
    dns_server = TestDnsServer(
        {
            ("_sip._udp.sip.test", "SRV"): ["20 0 5070 b.sip.test.", "10 0 5080 a.sip.test."],
            ("_sips._tcp.sip.test", "SRV"): ["10 0 5061 a.sip.test."],
            ("a.sip.test", "A"): ["127.0.0.2"],
            ("b.sip.test", "A"): ["127.0.0.3"],
            ("b.sip.test", "AAAA"): ["::1"],
            ("plain.test", "A"): ["127.0.0.9"],
        }
    )
    yield dns_server
    dns_server.stop()


async def test_srv_targets_in_priority_order_each_resolved(server: TestDnsServer) -> None:
    resolver = SipResolver([("127.0.0.1", server.port)])
    targets = await resolver.targets("sip.test", 5060, Transport.UDP)
    assert targets == [
        Destination(Transport.UDP, "127.0.0.2", 5080, "sip.test"),
        Destination(Transport.UDP, "127.0.0.3", 5070, "sip.test"),
        Destination(Transport.UDP, "::1", 5070, "sip.test"),
    ]


async def test_tls_uses_sips_srv_and_keeps_the_domain_as_server_name(server: TestDnsServer) -> None:
    targets = await SipResolver([("127.0.0.1", server.port)]).targets("sip.test", None, Transport.TLS)
    assert targets == [Destination(Transport.TLS, "127.0.0.2", 5061, "sip.test")]


async def test_explicit_non_default_port_skips_srv(server: TestDnsServer) -> None:
    targets = await SipResolver([("127.0.0.1", server.port)]).targets("plain.test", 5090, Transport.TCP)
    assert targets == [Destination(Transport.TCP, "127.0.0.9", 5090, "plain.test")]
    assert "SRV _sip._tcp.plain.test." not in server.queries


async def test_no_record_anywhere_is_a_resolve_error(server: TestDnsServer) -> None:
    with pytest.raises(ResolveError, match=r"nowhere\.test"):
        await SipResolver([("127.0.0.1", server.port)]).targets("nowhere.test", None, Transport.UDP)


async def test_ip_literals_need_no_dns_and_names_use_the_system_resolver() -> None:
    dead = SipResolver([("127.0.0.1", 9)])  # nothing listens there: an IP literal must not need DNS
    assert await dead.targets("192.0.2.5", None, Transport.UDP) == [
        Destination(Transport.UDP, "192.0.2.5", 5060, "192.0.2.5")
    ]
    local = await SipResolver().targets("localhost", 5090, Transport.UDP)  # hosts file, explicit port
    assert local and local[0].host in ("127.0.0.1", "::1") and local[0].port == 5090


def test_weighted_order_within_a_priority_follows_weights() -> None:
    records = [SrvRecord(10, 90, 1, "heavy"), SrvRecord(10, 10, 2, "light"), SrvRecord(5, 0, 3, "first")]
    rng = random.Random(7)
    firsts = [order_srv(records, rng)[1].target for _ in range(1000)]
    assert all(order_srv(records, rng)[0].target == "first" for _ in range(10))
    assert 850 <= firsts.count("heavy") <= 950


def test_srv_names() -> None:
    assert srv_name("example.com", Transport.UDP) == "_sip._udp.example.com."
    assert srv_name("example.com.", Transport.TLS) == "_sips._tcp.example.com."
