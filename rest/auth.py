"""Bearer-token authentication, scopes, per-token rate limits and CORS for the REST API.

Tokens are configured as SHA-256 digests (the token itself is never stored) and
compared in constant time. They are required on any listener that is not loopback
(``auth.required = "auto"``), optional on loopback; a token that is presented must
always be valid. ``read`` tokens may only GET.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from bridge.config import AuthConfig, BridgeConfig, split_host_port
from bridge.net.tickets import Tickets
from rest.browser import BrowserGuard
from rest.errors import error_response

CONSOLE_PREFIX = "/console/"


def is_console_path(path: str) -> bool:
    """The web console's page and static files: served without a token (they hold no data)."""
    return path == "/" or path.startswith(CONSOLE_PREFIX)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = ("/healthz", "/readyz", "/api/v1/openapi.json", "/api/v1/docs")
SELF_AUTHENTICATED = ("/ingest/", "/twiml/")  # Twilio signatures or route tokens (rest/ingest.py)
READ_METHODS = ("GET", "HEAD", "OPTIONS")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True)
class Caller:
    name: str
    scope: str  # "read", "listen" or "full"
    apps: frozenset[str] | None = None  # the appKeys whose calls it may see; None = every app's

    def sees(self, app_key: str) -> bool:
        return self.apps is None or app_key in self.apps

    @property
    def hears(self) -> bool:
        """May listen to calls and download recordings (scope listen or full)."""
        return self.scope in ("listen", "full")


CALLER_KEY = web.RequestKey("caller", Caller)


class TokenBucket:
    """``rate`` requests per second with bursts of ``burst`` (per caller)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float) -> float:
        """0 if allowed, else the seconds to wait."""
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[key] = (tokens - 1, now)
        return 0.0


# What a ticket (?ticket=, bridge/net/tickets.py) may open instead of a token: a call's listen stream
# and its recording files.
# What only scopes listen and full may open: tickets, a call's listen stream and its recordings.
HEARING_PATH = re.compile(r"^/api/v1/calls/[^/]+/(?:tickets|listen|recordings)(?:/|$)")
TICKET_PATH = re.compile(r"^/api/v1/calls/(?P<call>[^/]+)/(?:(?P<listen>listen)|recordings/[^/]+)$")


class Authenticator:
    def __init__(self, config: AuthConfig, listen: str, tickets: Tickets | None = None) -> None:
        self.tickets = tickets or Tickets()
        host = split_host_port(listen)[0]
        self._loopback = host == "localhost" or _is_loopback(host)
        self._listen_host = host
        self.guard = BrowserGuard(host, (), config.cors_origins)
        self.configure(config)

    def configure_browsers(self, config: BridgeConfig) -> None:
        """Hosts and origins a browser may use (``rest.allowed_hosts``, ``rest.cors_origins``; rest/browser.py)."""
        origins = [*config.rest.cors_origins, *config.auth.cors_origins]  # auth.cors_origins: the older name
        hosts = [*config.rest.allowed_hosts, *_url_hosts(config.cluster.advertise_url, config.ingest.public_url)]
        self.guard = BrowserGuard(self._listen_host, hosts, origins)
        self._cors = set(origins)

    def configure(self, config: AuthConfig) -> None:
        """Take tokens, rate limits and CORS origins from ``config`` (at start and on SIGHUP)."""
        self._tokens = [
            (t.sha256, Caller(t.name or f"token-{i + 1}", t.scope, frozenset(t.apps) if t.apps else None))
            for i, t in enumerate(config.tokens)
        ]
        self.required = config.required == "always" or (config.required == "auto" and not self._loopback)
        self._limiter = TokenBucket(config.rate_per_second, config.burst)
        self._cors = set(config.cors_origins)

    def identify(self, header: str | None) -> Caller | None:
        """The caller for an Authorization header value, or None if missing/invalid."""
        if not header or not header.startswith("Bearer "):
            return None
        digest = hash_token(header[len("Bearer ") :].strip())
        found: Caller | None = None
        for stored, caller in self._tokens:  # every entry is compared: constant time over the set
            if hmac.compare_digest(stored, digest):
                found = caller
        return found

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = self.guard.refusal(request)
        if refused is not None:
            return refused
        if request.method == "OPTIONS" and self._cors:
            return self._cors_headers(request, web.Response(status=204))
        if request.path in OPEN_PATHS or is_console_path(request.path) or request.path.startswith(SELF_AUTHENTICATED):
            return await handler(request)
        header = request.headers.get("Authorization")
        if header is None and "ticket" in request.query:
            return await self._with_ticket(request, handler)
        caller = self.identify(header)
        if caller is None and (header or self.required):
            response = error_response(401, "unauthorized", "a valid bearer token is required (Authorization: Bearer …)")
            response.headers["WWW-Authenticate"] = 'Bearer realm="sip-rtmp-bridge"'
            return response
        caller = caller or Caller("anonymous", "full")
        if caller.scope != "full" and request.method not in READ_METHODS:
            return error_response(403, "forbidden", f"token {caller.name!r} is read-only")
        if not caller.hears and HEARING_PATH.match(request.path):
            message = f"token {caller.name!r} (scope read) may not listen or fetch recordings; give it scope listen"
            return error_response(403, "forbidden", message)
        wait = self._limiter.take(caller.name, time.monotonic()) if caller.name != "anonymous" else 0.0
        if wait:
            response = error_response(429, "rate_limited", "too many requests; slow down")
            response.headers["Retry-After"] = str(max(1, round(wait)))
            return response
        request[CALLER_KEY] = caller
        return self._cors_headers(request, await handler(request))

    async def _with_ticket(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A ticket instead of a token: GET only, and only the call and purpose it was issued for."""
        match = TICKET_PATH.match(request.path)
        if match is None or request.method not in ("GET", "HEAD"):
            return error_response(403, "forbidden", "a ticket opens only a call's listen stream and recordings")
        purpose = "listen" if match["listen"] else "recordings"
        refusal = self.tickets.check(request.query["ticket"], match["call"], purpose, time.time())
        if refusal is not None:
            return error_response(403, "forbidden", refusal)
        request[CALLER_KEY] = Caller(f"ticket:{purpose}", "listen")
        return await handler(request)

    def _cors_headers(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin and origin in self._cors:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
            response.headers["Vary"] = "Origin"
        return response


def _url_hosts(*urls: str) -> list[str]:
    """The host names in configured URLs of this listener (the cluster's advertise_url, ingest's public_url)."""
    return [host for host in (urllib.parse.urlsplit(url).hostname for url in urls if url) if host]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
