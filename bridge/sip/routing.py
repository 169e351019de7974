"""Where to send a request: route set and remote target, RFC 3261 sections 12.2.1.1, 18.1.1, 19.1.2."""

from __future__ import annotations

import ipaddress

from sipmessage import URI, Address

from bridge.sip.addressing import Destination, Transport


def is_ip_literal(host: str) -> bool:
    """An IPv4 address or an IPv6 address (bracketed or not) as RFC 3261 §25.1's host grammar has
    them: no IPv6 zone (``%scope``), which Python's ipaddress accepts with any text after it."""
    if "%" in host:
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def uri_transport(uri: URI, default: Transport) -> Transport:
    """``sips:`` means TLS; a ``transport=`` parameter wins; else ``default``."""
    if uri.scheme == "sips":
        return Transport.TLS
    param = (uri.parameters.get("transport") or "").upper()
    return Transport(param) if param in Transport.__members__ else default


def uri_destination(uri: URI, default: Transport, server_name: str | None = None) -> Destination | None:
    """Transport and host:port of a URI if its host is an address; None for names (they need DNS)."""
    host = uri.parameters.get("maddr") or uri.host
    if not is_ip_literal(host):
        return None
    transport = uri_transport(uri, default)
    return Destination(transport, host.strip("[]"), uri.port or transport.default_port, server_name)


def next_hop(route_set: list[Address], remote_target: URI, fallback: Destination) -> Destination:
    """The first Route entry if any, else the remote target (section 8.1.2).

    A hop named by a host name is sent to ``fallback`` (the SIP domain we placed the
    call through, acting as outbound proxy), over the transport the URI asks for.
    """
    uri = route_set[0].uri if route_set else remote_target
    found = uri_destination(uri, fallback.transport, fallback.server_name)
    return found or fallback
