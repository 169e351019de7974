"""What a web browser may do with the API: no other site's page drives it, and no rebound name reads it.

A daemon on loopback without tokens answers anonymous requests (curl, scripts). A browser on the
same host would otherwise let any web page do the same: a ``text/plain`` form POST needs no CORS
preflight, and a DNS name that an attacker re-points at 127.0.0.1 (DNS rebinding) makes the API
the page's own origin. The checks, in order:

1. ``Host`` (RFC 9110 §7.2) names the listen address, ``localhost``, an address of a wildcard
   listener, the cluster's ``advertise_url`` or one of ``rest.allowed_hosts``; otherwise 421
   Misdirected Request (RFC 9110 §15.5.20).
2. A request a browser marks as another site's (``Sec-Fetch-Site: cross-site``, Fetch Metadata) or
   whose ``Origin`` (RFC 6454 §7) is neither the console's own origin nor in ``rest.cors_origins``
   is refused (403), whatever its Content-Type. A top-level navigation (a link to the console) is
   not: it can read nothing back.
3. ``/api/v1`` writes that carry a body need ``application/json`` (415 otherwise); ``/RESTCall``
   keeps taking JSON under any Content-Type from clients that are not browsers.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Iterable

from aiohttp import web

from rest.errors import Handler, error_response

_HOST = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::(?P<port>[0-9]{1,5}))?$")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_JSON_TYPES = frozenset({"application/json"})


def host_of(header: str) -> str | None:
    """The host in a ``Host`` header value, lower case and without brackets; None if malformed."""
    match = _HOST.match(header.strip())
    if match is None:
        return None
    return (match["v6"] or match["name"]).lower()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class BrowserGuard:
    """The Host, Origin and Content-Type checks above, as one aiohttp middleware."""

    def __init__(self, listen_host: str, allowed_hosts: Iterable[str], cors_origins: Iterable[str]) -> None:
        listen = listen_host.lower().strip("[]")
        self._any_address = listen in ("0.0.0.0", "::", "")
        self._hosts = {listen, "localhost", *(host.lower() for host in allowed_hosts)}
        self._origins = {origin.rstrip("/").lower() for origin in cors_origins}

    def host_allowed(self, host: str) -> bool:
        return host in self._hosts or (self._any_address and _is_ip(host))

    def origin_allowed(self, origin: str, host_header: str) -> bool:
        """The console's own origin (same scheme-less host:port as ``Host``) or a configured one."""
        origin = origin.rstrip("/").lower()
        if origin in self._origins:
            return True
        parts = urllib.parse.urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == host_header.strip().lower()

    def refusal(self, request: web.Request) -> web.Response | None:
        """The response that refuses ``request``, or None to let it through."""
        host_header = request.headers.get("Host", "")
        host = host_of(host_header)
        if host is None or not self.host_allowed(host):
            message = "the Host header names no address of this listener; add the name to rest.allowed_hosts"
            return error_response(421, "misdirected_request", message)
        navigation = request.method in ("GET", "HEAD") and request.headers.get("Sec-Fetch-Mode") == "navigate"
        origin = request.headers.get("Origin")
        if not navigation and origin is not None and not self.origin_allowed(origin, host_header):
            return error_response(403, "forbidden_origin", "requests from this web page's origin are refused")
        if not navigation and request.headers.get("Sec-Fetch-Site") == "cross-site" and origin is None:
            return error_response(403, "forbidden_origin", "requests from another site are refused")
        if request.method in _WRITES and request.path.startswith("/api/v1/") and not _json_or_empty(request):
            message = "send the body as JSON with Content-Type: application/json"
            return error_response(415, "unsupported_media_type", message)
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = self.refusal(request)
        return refused if refused is not None else await handler(request)


def _json_or_empty(request: web.Request) -> bool:
    """A JSON Content-Type, or no body at all (``curl -X POST …/hangup``)."""
    return not request.body_exists or request.content_type in _JSON_TYPES
