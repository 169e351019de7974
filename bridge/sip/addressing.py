"""Where SIP messages go: transport plus address (RFC 3261 sections 18 and 19.1.2)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Transport(StrEnum):
    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"

    @property
    def reliable(self) -> bool:
        """Reliable transports get no retransmissions (sections 17.1.1.2 and 17.1.2.2)."""
        return self is not Transport.UDP

    @property
    def default_port(self) -> int:
        return 5061 if self is Transport.TLS else 5060

    @property
    def uri_param(self) -> str | None:
        """The ``transport=`` URI parameter that selects this transport (none for UDP)."""
        return None if self is Transport.UDP else self.value.lower()


@dataclass(frozen=True, slots=True)
class Destination:
    """A transport and peer address; ``server_name`` is the TLS name to verify (SNI)."""

    transport: Transport
    host: str
    port: int
    server_name: str | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.value.lower()}:{host}:{self.port}"


def bracket(host: str) -> str:
    """IPv6 literals in Via and URIs are written in brackets (RFC 3261 section 25.1)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def udp(host: str, port: int) -> Destination:
    return Destination(Transport.UDP, host, port)
