"""Locating the SIP domain's servers, RFC 3263 section 4, without blocking the loop.

- An IP address is used as is.
- A name with no port, or with the transport's default port (clients send "5060" by
  habit), is looked up as SRV ``_sip._udp`` / ``_sip._tcp`` / ``_sips._tcp``
  (RFC 3263 section 4.2); targets are ordered by priority and, within a priority,
  by weighted random choice (RFC 2782), then each is resolved to A/AAAA.
- Otherwise, or when there is no SRV record, the name's A/AAAA at the given port.

The call tries the targets in order, moving on after a timeout, a 503 or a transport
error (section 4.3). NAPTR is not used: the transport comes from the request.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from bridge.sip.addressing import Destination, Transport
from bridge.sip.routing import is_ip_literal

DNS_TIMEOUT = 3.0
MAX_TARGETS = 8


class ResolveError(Exception):
    """The SIP domain could not be resolved; the message says which and why."""


@dataclass(frozen=True, slots=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str


def srv_name(domain: str, transport: Transport) -> str:
    service = "_sips._tcp" if transport is Transport.TLS else f"_sip._{transport.value.lower()}"
    return f"{service}.{domain.rstrip('.')}."


def order_srv(records: Sequence[SrvRecord], rng: random.Random) -> list[SrvRecord]:
    """RFC 2782: ascending priority; within one, weighted random order (weight 0 last-ish)."""
    ordered: list[SrvRecord] = []
    for priority in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == priority]
        while group:
            total = sum(r.weight for r in group)
            pick = rng.uniform(0, total) if total else 0
            running = 0
            for record in sorted(group, key=lambda r: r.weight):
                running += record.weight
                if running >= pick:
                    break
            ordered.append(record)
            group.remove(record)
    return ordered


class SipResolver:
    """SRV and address lookups through dnspython's asyncio resolver."""

    def __init__(self, nameservers: Sequence[tuple[str, int]] = (), rng: random.Random | None = None) -> None:
        self._resolver = dns.asyncresolver.Resolver(configure=not nameservers)
        self._explicit = bool(nameservers)
        if nameservers:
            self._resolver.nameservers = [dns.nameserver.Do53Nameserver(h, port=p) for h, p in nameservers]
        self._resolver.lifetime = DNS_TIMEOUT
        self._rng = rng or random.Random()

    async def targets(self, domain: str, port: int | None, transport: Transport) -> list[Destination]:
        """Destinations to try in order; raise :class:`ResolveError` if there are none."""
        name = domain.strip("[]")
        if is_ip_literal(name):
            return [Destination(transport, name, port or transport.default_port, name)]
        found: list[Destination] = []
        if port in (None, transport.default_port):
            for record in order_srv(await self._srv(name, transport), self._rng):
                hosts = await self._addresses(record.target)
                found += [Destination(transport, host, record.port, name) for host in hosts]
        if not found:
            hosts = await self._addresses(name)
            found = [Destination(transport, host, port or transport.default_port, name) for host in hosts]
        if not found:
            raise ResolveError(f"cannot resolve sipDomain {domain!r}: no SRV, A or AAAA record")
        return found[:MAX_TARGETS]

    async def _srv(self, domain: str, transport: Transport) -> list[SrvRecord]:
        try:
            answer = await self._resolver.resolve(srv_name(domain, transport), dns.rdatatype.SRV)
        except (dns.exception.DNSException, OSError):
            return []
        return [
            SrvRecord(r.priority, r.weight, r.port, r.target.to_text(omit_final_dot=True))
            for r in answer
            if r.target.to_text() != "."
        ]

    async def _addresses(self, host: str) -> list[str]:
        """A/AAAA: the system resolver (hosts file, nsswitch) unless DNS servers are configured,
        in which case those are asked first and the system resolver only if they have nothing."""
        if not self._explicit:
            return await _system_addresses(host)
        found: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                answer = await self._resolver.resolve(host, rdtype)
            except (dns.exception.DNSException, OSError):
                continue
            found += [r.address for r in answer]
        return found or await _system_addresses(host)


async def _system_addresses(host: str) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except socket.gaierror:
        return []
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses
