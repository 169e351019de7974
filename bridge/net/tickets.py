"""Short-lived tickets that let a URL do what a bearer token does, for one call and one purpose.

An ``<audio>`` element cannot send an Authorization header, so the console asks for a ticket
(with its token) and puts it in the URL of the live listen stream or of a recording. A ticket is
``<payload>.<signature>``: the payload names the call, the purpose (``listen`` or
``recordings``) and the expiry; the signature is HMAC-SHA256 under a key made at start-up, so
tickets need no storage and die with the process. In a cluster every node signs with one key kept
in Redis (``<cluster.name>:tickets-key``, made by the first node), so a ticket one node issued
opens the URL on any node. A ticket authorises requests that start
before it expires (a listen stream started in time goes on).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets

PURPOSES = ("listen", "recordings")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Tickets:
    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def use_key(self, key: bytes) -> None:
        """Sign and check with ``key`` from now on (the cluster's shared key)."""
        self._key = key

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, call_id: str, purpose: str, now: float, ttl: float) -> tuple[str, int]:
        """A ticket for ``purpose`` on ``call_id`` and its expiry (Unix seconds)."""
        expires = int(now + ttl)
        payload = _b64(json.dumps({"c": call_id, "p": purpose, "e": expires}, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}", expires

    def check(self, ticket: str, call_id: str, purpose: str, now: float) -> str | None:
        """None if ``ticket`` allows ``purpose`` on ``call_id`` at ``now``; else why not."""
        payload, _, signature = ticket.partition(".")
        if not payload or not hmac.compare_digest(self._sign(payload), signature):
            return "the ticket is not valid (ask for a new one)"
        try:
            fields = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            return "the ticket is not valid (ask for a new one)"
        if fields.get("c") != call_id:
            return "the ticket is for another call"
        if fields.get("p") != purpose:
            return f"the ticket is for {fields.get('p')}, not {purpose}"
        if not isinstance(fields.get("e"), int) or now >= fields["e"]:
            return "the ticket has expired (ask for a new one)"
        return None
