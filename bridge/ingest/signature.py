"""Authenticating a stream before any session exists (sans-IO).

Twilio signs every request it makes, WebSocket upgrades included, with ``X-Twilio-Signature``:
base64 of HMAC-SHA1 keyed with the account's auth token over the full URL, followed, for a
form POST, by each parameter's name and value in name order (Twilio's "Webhooks security").
Other routes compare the ``token`` query parameter with the route's secret. Both in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit


def twilio_signature(auth_token: str, url: str, form: Iterable[tuple[str, str]] = ()) -> str:
    """The signature Twilio computes for ``url`` (and a form body's parameters)."""
    data = url + "".join(name + value for name, value in sorted(form))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_valid(auth_token: str, url: str, signature: str, form: Iterable[tuple[str, str]] = ()) -> bool:
    """Whether ``signature`` is Twilio's for this URL, with or without the scheme's default port
    (Twilio's own validator accepts both, as a proxy may add or drop it)."""
    if not signature:
        return False
    pairs = list(form)
    expected = signature.encode()
    return any(
        hmac.compare_digest(twilio_signature(auth_token, candidate, pairs).encode(), expected)
        for candidate in _port_variants(url)
    )


def token_valid(secret: str, token: str) -> bool:
    return bool(token) and hmac.compare_digest(secret.encode(), token.encode())


_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}


def _port_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    if parts.port is None and default is not None:
        return [url, urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}"))]
    if parts.port == default:
        return [url, urlunsplit(parts._replace(netloc=f"{prefix}{host}"))]
    return [url]
