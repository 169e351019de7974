"""RTMP publish authentication, client side: ``authmod=adobe`` and ``authmod=llnw`` (sans-IO).

Neither scheme has a published specification; the message flow is the one Wowza
Streaming Engine, Adobe Media Server and Limelight use, as FFmpeg's libavformat/rtmpproto.c
and librtmp implement it (``do_adobe_auth``, ``do_llnw_auth``, ``handle_connect_error``):

1. ``connect`` with the application ``live?authmod=adobe&user=U`` (we know the user, so we
   skip the anonymous first try that only learns the authmod).
2. The server rejects it: ``_error`` with a description ending in
   ``?reason=needauth&user=U&salt=S&challenge=C&opaque=O`` (llnw: ``&nonce=N``).
3. A new connection whose ``connect`` carries the response:
   adobe: ``response = b64(md5(b64(md5(U + S + password)) + (O or C) + C2))`` with our
   random ``C2``, sent as ``?authmod=adobe&user=U&challenge=C2&response=R&opaque=O``;
   llnw: an HTTP-digest-like ``md5hex`` over ``U:live:password``, ``publish:/app[/_definst_]``,
   nonce, ``nc=00000001``, cnonce and ``qop=auth``.
4. ``?reason=authfailed`` (or a second challenge) means the credentials are wrong: the
   stream fails; there is no reconnect loop. Every new connection (a reconnect after a
   drop) starts again at step 1, since challenges are per connection.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass

_AUTHMOD = re.compile(r"authmod=(adobe|llnw)")
_PARAM = re.compile(r"([A-Za-z]+)=([^&\s]*)")


def _b64md5(text: str) -> str:
    return base64.b64encode(hashlib.md5(text.encode()).digest()).decode()


def _md5hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def adobe_response(user: str, password: str, salt: str, challenge: str, opaque: str, client_challenge: str) -> str:
    """The ``response`` of authmod=adobe (FFmpeg's ``do_adobe_auth``): opaque wins over challenge."""
    return _b64md5(_b64md5(user + salt + password) + (opaque or challenge) + client_challenge)


def llnw_response(user: str, password: str, app: str, nonce: str, cnonce: str, nc: str = "00000001") -> str:
    """The ``response`` of authmod=llnw (FFmpeg's ``do_llnw_auth``): realm "live", method "publish"."""
    path = app if "/" in app else app + "/_definst_"
    ha1 = _md5hex(f"{user}:live:{password}")
    ha2 = _md5hex(f"publish:/{path}")
    return _md5hex(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")


@dataclass(frozen=True, slots=True)
class Retry:
    """Connect again at once with this query appended to the application."""

    query: str


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str


class PublishAuth:
    """One stream's authentication across its connections; :meth:`query` for each new connect."""

    def __init__(self, user: str, password: str, app: str, authmod: str = "adobe", nonce_source: bytes | None = None):
        self.user, self._password, self._app = user, password, app.partition("?")[0]
        self.authmod = authmod
        self._pending = ""  # the response query for the next connection, if a challenge came
        self._responded = False
        self._switched = False
        self._random = nonce_source

    @property
    def enabled(self) -> bool:
        return bool(self.user)

    def query(self) -> str:
        """What to append to the application on the next connect ("" without credentials)."""
        if not self.enabled:
            return ""
        return self._pending or f"authmod={self.authmod}&user={self.user}"

    def published(self) -> None:
        """Authenticated: the next connection (after a drop) starts with a fresh challenge."""
        self._pending, self._responded, self._switched = "", False, False

    def rejected(self, description: str) -> Retry | Failed | None:
        """A connect rejection: the next connect to try, why we give up, or None if not about auth."""
        authmod = _AUTHMOD.search(description)
        if authmod is None:
            return None
        if not self.enabled:
            return Failed(
                f"RTMP server requires authentication (authmod={authmod[1]}): give rtmp://user:password@host/app"
            )
        if "reason=authfailed" in description or "reason=nosuchuser" in description or self._responded:
            return Failed(f"RTMP authentication failed (authmod={self.authmod}): wrong user name or password")
        if authmod[1] != self.authmod or "reason=needauth" not in description:
            return self._switch(authmod[1])
        params = dict(_PARAM.findall(description.partition("?reason=needauth")[2]))
        self._responded = True
        self._pending = self._answer(params)
        return Retry(self._pending)

    def _switch(self, authmod: str) -> Retry | Failed:
        """The server wants the other authmod (or a first anonymous step): once, not in a loop."""
        if self._switched:
            return Failed("RTMP authentication failed: the server's challenge could not be answered")
        self._switched, self.authmod = True, authmod
        return Retry(self.query())

    def _answer(self, params: dict[str, str]) -> str:
        own = (self._random or os.urandom(4)).hex()[:8]
        if self.authmod == "llnw":
            nonce = params.get("nonce", "")
            response = llnw_response(self.user, self._password, self._app, nonce, own)
            return f"authmod=llnw&user={self.user}&nonce={nonce}&cnonce={own}&nc=00000001&response={response}"
        salt, challenge, opaque = params.get("salt", ""), params.get("challenge", ""), params.get("opaque", "")
        response = adobe_response(self.user, self._password, salt, challenge, opaque, own)
        query = f"authmod=adobe&user={self.user}&challenge={own}&response={response}"
        return query + (f"&opaque={opaque}" if opaque else "")
