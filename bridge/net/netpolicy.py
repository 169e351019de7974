"""Where a caller may make the bridge connect: never link-local or cloud metadata addresses, and
only into ``rtmp.allowed_networks`` / ``sip.allowed_networks`` when an operator lists them.

An API that takes ``rtmpUrl`` and ``sipDomain`` makes the bridge a client for whoever calls it
(server-side request forgery): 169.254.169.254 answers with cloud credentials on most clouds. The
check runs on literals at admission (a 400 naming the field) and again on every address a name
resolves to, at connect time, so a DNS name pointed at a refused address is refused as well.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import ssl
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# RFC 3927 IPv4 link-local (169.254.169.254: AWS, GCP, Azure, OpenStack metadata), RFC 4291 §2.5.6
# IPv6 link-local, and AWS's IPv6 metadata address.
ALWAYS_REFUSED: tuple[Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDR blocks (or single addresses); ValueError naming the bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an address or CIDR block (e.g. 203.0.113.0/24)") from None
    return tuple(networks)


class NetworkPolicy:
    """``refusal(address)``: why the bridge may not connect to ``address``, or None."""

    def __init__(self, allowed: Iterable[str] = (), key: str = "") -> None:
        self.allowed = parse_networks(allowed)
        self.key = key  # the config key that lists the allowed networks, for the message

    def refusal(self, host: str) -> str | None:
        try:
            address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            return None  # a name: checked on the addresses it resolves to
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in ALWAYS_REFUSED):
            return f"{address} is a link-local or cloud metadata address, which the bridge never connects to"
        if self.allowed and not any(address in network for network in self.allowed):
            return f"{address} is not in {self.key or 'the allowed networks'}"
        return None


def short_reason(exc: BaseException) -> str:
    """What a caller learns of a failed connection: refused, timed out, unreachable or not found.

    The detail (errno text, reset or refused, TLS alerts) goes to the log only; in an API answer it
    would tell a caller what listens where (a port scanner)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "host not found"
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return "unreachable"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    return "refused"
