"""Request-URI and From URI from the REST contract's callee, sipDomain and sipPort.

Accepted callee forms: a user or phone number (``sip:<callee>@<domain>``), the
SIP domain itself (``sip:<domain>``, as in the original product's example),
``user@host``, or a full ``sip:``/``sips:`` URI (RFC 3261 section 19.1).
"""

from __future__ import annotations

import re

from sipmessage import URI

from bridge.sip.addressing import bracket
from bridge.sip.routing import is_ip_literal

_USER = re.compile(r"^[A-Za-z0-9\-_.!~*'()&=+$,;?/%#]+$")
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?)$")
DEFAULT_SIP_PORT = 5060


class TargetError(ValueError):
    """A callee or domain that cannot form a SIP URI; ``field`` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def validate_host(domain: str, field: str = "connection.sipDomain") -> str:
    if is_ip_literal(domain):
        return domain
    if not _HOST.match(domain):
        raise TargetError(field, f"{domain!r} is not a host name or IP address")
    return domain


def _port_for(sip_port: int | None) -> int | None:
    return None if sip_port in (None, DEFAULT_SIP_PORT) else sip_port


def request_uri(callee: str, domain: str, sip_port: int | None) -> URI:
    """Build the Request-URI for ``callee``; raise :class:`TargetError` naming the field."""
    validate_host(domain)
    domain = bracket(domain.strip("[]"))
    callee = callee.strip()
    if not callee:
        raise TargetError("callee", "callee is empty; give a number, a user, user@host or a sip: URI")
    if callee.lower().startswith(("sip:", "sips:")):
        try:
            return URI.parse(callee)
        except ValueError:
            raise TargetError("callee", f"{callee!r} is not a valid SIP URI") from None
    if "@" in callee:
        user, _, host = callee.rpartition("@")
        host_part, _, port_text = host.partition(":")
        validate_host(host_part, "callee")
        _check_user(user)
        port = int(port_text) if port_text.isdigit() else None
        return URI(scheme="sip", host=host_part, user=user, port=port)
    if callee.lower() in (domain.lower(), domain.strip("[]").lower()) or is_ip_literal(callee):
        return URI(scheme="sip", host=bracket(callee.strip("[]")), port=_port_for(sip_port))
    _check_user(callee)
    return URI(scheme="sip", host=domain, user=callee, port=_port_for(sip_port))


def from_uri(login: str, domain: str) -> URI:
    """Our identity, ``sip:<sipLogin>@<sipDomain>``."""
    _check_user(login, field="connection.sipLogin")
    return URI(scheme="sip", host=bracket(validate_host(domain).strip("[]")), user=login)


def _check_user(user: str, field: str = "callee") -> None:
    if not user or not _USER.match(user):
        raise TargetError(field, f"{user!r} may only contain letters, digits and - _ . ! ~ * ' ( ) & = + $ , ; ? / % #")
