"""What the SIP port does with traffic that belongs to none of our calls (sans-IO).

A SIP port on a public address receives scanner traffic all day: OPTIONS, INVITE and REGISTER
sweeps, garbage, oversized datagrams. By default a request that matches no call of ours and
comes from an address that is neither a SIP domain of an active call or registration nor in
``sip.trusted_sources`` is dropped without a reply (``sip.unknown_requests = "drop"``): a
reply would confirm a SIP service to the scanner and cost state and CPU. What is answered is
answered statelessly (no server transaction is kept: RFC 3261 §8.2.6 allows a UAS to reject
without one) and at most ``sip.out_of_dialog_rate`` times a second. Every drop is counted by
reason for ``/metrics``, and the log gets one summary line a minute, never one per packet.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SUMMARY_SECONDS = 60.0
MAX_SOURCES_REMEMBERED = 1000

UNPARSABLE = "unparsable"
OVERSIZED = "oversized"
UNKNOWN_SOURCE = "unknown source"
RATE_LIMITED = "rate limited"
STRAY_RESPONSE = "response for no call"
REASONS = (UNPARSABLE, OVERSIZED, UNKNOWN_SOURCE, RATE_LIMITED, STRAY_RESPONSE)


def parse_networks(values: list[str]) -> tuple[Network, ...]:
    """``sip.trusted_sources``: addresses or CIDR blocks (raises ValueError naming the bad one)."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip("[]"), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network (e.g. 203.0.113.0/24)") from None
    return tuple(networks)


@dataclass
class InboundPolicy:
    mode: Literal["drop", "reply"] = "drop"
    trusted: tuple[Network, ...] = ()
    rate: float = 20.0  # answered out-of-dialog requests per second, all sources together
    burst: int = 40
    max_message_bytes: int = 16384
    drops: Counter[str] = field(default_factory=Counter)
    _allowance: float | None = None
    _last: float = 0.0
    _sources: set[str] = field(default_factory=set)
    _summarised: Counter[str] = field(default_factory=Counter)
    _summary_at: float | None = None

    def is_trusted(self, host: str, known: set[str]) -> bool:
        """A SIP domain of an active call or registration, or a configured trusted source."""
        if host in known:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    def may_answer(self, host: str, known: set[str], now: float) -> bool:
        """Whether an out-of-dialog request from ``host`` gets a (stateless) answer; counts it if not."""
        if self.mode == "drop" and not self.is_trusted(host, known):
            self.drop(UNKNOWN_SOURCE, host)
            return False
        if not self._take(now):
            self.drop(RATE_LIMITED, host)
            return False
        return True

    def _take(self, now: float) -> bool:
        """Token bucket: ``burst`` at once, ``rate`` a second sustained."""
        allowance = self.burst if self._allowance is None else self._allowance
        allowance = min(float(self.burst), allowance + (now - self._last) * self.rate)
        self._last = now
        if allowance < 1.0:
            self._allowance = allowance
            return False
        self._allowance = allowance - 1.0
        return True

    def drop(self, reason: str, host: str) -> None:
        self.drops[reason] += 1
        if len(self._sources) < MAX_SOURCES_REMEMBERED:
            self._sources.add(host)

    def summary(self, now: float) -> str | None:
        """What was dropped since the last summary (the first drops at once, then at most once per
        SUMMARY_SECONDS), or None."""
        if self._summary_at is not None and now - self._summary_at < SUMMARY_SECONDS:
            return None
        new = self.drops - self._summarised
        if not new:
            return None
        sources = sorted(self._sources)
        shown = ", ".join(sources[:3]) + (f" and {len(sources) - 3} more" if len(sources) > 3 else "")
        text = ", ".join(f"{count} {reason}" for reason, count in new.most_common())
        self._summarised, self._sources, self._summary_at = self.drops.copy(), set(), now
        return f"SIP traffic dropped: {text} (from {shown}); at most one such line a minute"
