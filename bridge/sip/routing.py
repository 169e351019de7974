"""Where to send a request: route set and remote target, RFC 3261 sections 12.2.1.1 and 18.1.1."""

from __future__ import annotations

import ipaddress

from sipmessage import URI, Address

Endpoint = tuple[str, int]


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def default_port(uri: URI) -> int:
    """5060 for sip:, 5061 for sips: (section 19.1.2)."""
    return 5061 if uri.scheme == "sips" else 5060


def uri_endpoint(uri: URI) -> Endpoint | None:
    """host:port of a URI if its host is an address; None for names (they need DNS)."""
    host = uri.parameters.get("maddr") or uri.host
    if not is_ip_literal(host):
        return None
    return (host.strip("[]"), uri.port or default_port(uri))


def next_hop(route_set: list[Address], remote_target: URI, fallback: Endpoint) -> Endpoint:
    """The first Route entry if any, else the remote target (section 8.1.2).

    A hop named by a host name is sent to ``fallback`` (the SIP domain we placed
    the call through), which acts as the outbound proxy.
    """
    uri = route_set[0].uri if route_set else remote_target
    return uri_endpoint(uri) or fallback
