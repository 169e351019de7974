"""Request-URI from each callee form clients use."""

from __future__ import annotations

import pytest

from bridge.sip.target import TargetError, from_uri, request_uri


@pytest.mark.parametrize(
    ("callee", "port", "expected"),
    [
        ("+14155550100", 5060, "sip:+14155550100@example.sip.twilio.com"),
        ("alice", 5080, "sip:alice@example.sip.twilio.com:5080"),
        ("example.sip.twilio.com", 5060, "sip:example.sip.twilio.com"),
        ("bob@pbx.example.org", 5060, "sip:bob@pbx.example.org"),
        ("bob@pbx.example.org:5070", 5060, "sip:bob@pbx.example.org:5070"),
        ("sips:carol@secure.example.org", 5060, "sips:carol@secure.example.org"),
        ("sip:1234@10.1.2.3:5062;transport=udp", 5060, "sip:1234@10.1.2.3:5062;transport=udp"),
    ],
)
def test_callee_forms(callee: str, port: int, expected: str) -> None:
    assert str(request_uri(callee, "example.sip.twilio.com", port)) == expected


@pytest.mark.parametrize(
    ("callee", "domain", "field"),
    [
        ("bob smith", "example.com", "callee"),
        ("bob", "bad domain", "connection.sipDomain"),
        ("sip:", "example.com", "callee"),
        ("bob@", "example.com", "callee"),
        ("a<b>", "example.com", "callee"),
    ],
)
def test_invalid_callee_or_domain_names_the_field(callee: str, domain: str, field: str) -> None:
    with pytest.raises(TargetError) as info:
        request_uri(callee, domain, 5060)
    assert info.value.field == field


def test_from_uri_uses_login_at_domain() -> None:
    assert str(from_uri("bridge", "example.com")) == "sip:bridge@example.com"
    with pytest.raises(TargetError):
        from_uri("a b", "example.com")


@pytest.mark.parametrize("domain", ["::1", "[::1]", "2001:db8::5"])
def test_ipv6_domains_are_bracketed(domain: str) -> None:
    host = "[" + domain.strip("[]") + "]"
    assert str(request_uri("alice", domain, 5070)) == f"sip:alice@{host}:5070"
    assert str(request_uri(domain, domain, None)) == f"sip:{host}"
    assert str(from_uri("bridge", domain)) == f"sip:bridge@{host}"
