"""HTTP Digest authentication for SIP, client side.

RFC 3261 section 22.4 (SIP profile of RFC 2617), RFC 7616 (SHA-256, -sess
variants) and RFC 8760 (SHA-256 in SIP). Sans-IO: the cnonce source is
injected so tests can use the RFCs' vectors.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from sipmessage import AuthChallenge, AuthCredentials, AuthParameters
from sipmessage.address import quote

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}


_QUOTED_CREDENTIAL_PARAMETERS = frozenset(["username", "realm", "nonce", "uri", "response", "cnonce", "opaque"])


class CredentialParameters(AuthParameters):
    """Digest credentials serialised as RFC 3261 section 25.1 writes them.

    ``qop``, ``nc`` and ``algorithm`` are tokens (unquoted); the generic
    serialiser would quote ``qop``, which some servers reject.
    """

    def __str__(self) -> str:
        return ", ".join(
            f"{key}={quote(value) if key in _QUOTED_CREDENTIAL_PARAMETERS else value}" for key, value in self.items()
        )


class DigestError(ValueError):
    """A challenge we cannot answer (unknown scheme, algorithm or qop)."""


_CHALLENGE = re.compile(r"^\s*(?P<scheme>[A-Za-z][A-Za-z0-9._-]*)\s+(?P<params>.*)$", re.S)
_AUTH_PARAM = re.compile(
    r'\s*(?P<key>[A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>[^\s,"]+))\s*(?:,|$)'
)
_STRENGTH = {"SHA-256": 2, "SHA-256-SESS": 2, "MD5": 1, "MD5-SESS": 1}


def parse_challenge(value: str) -> AuthChallenge:
    """Parse a WWW-/Proxy-Authenticate value, RFC 7235 section 2.1 / RFC 3261 section 25.1.

    Unlike a split on commas, quoted values may contain commas (``qop="auth,auth-int"``).
    """
    match = _CHALLENGE.match(value)
    if match is None:
        raise DigestError(f"malformed challenge {value!r}")
    params: dict[str, str] = {}
    rest = match["params"].strip()
    while rest:
        item = _AUTH_PARAM.match(rest)
        if item is None:
            raise DigestError(f"malformed challenge parameters {rest!r}")
        quoted = item["quoted"]
        params[item["key"].lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else item["token"]
        rest = rest[item.end() :].strip()
    return AuthChallenge(scheme=match["scheme"], parameters=AuthParameters(**params))


def strongest_challenge(values: list[str]) -> AuthChallenge | None:
    """Among several challenges (RFC 8760 section 2.4), the strongest Digest one we support."""
    best: tuple[int, AuthChallenge] | None = None
    for value in values:
        try:
            challenge = parse_challenge(value)
        except DigestError:
            continue
        algorithm = challenge.parameters.get("algorithm", "MD5").upper()
        strength = _STRENGTH.get(algorithm, 0) if challenge.scheme.lower() == "digest" else 0
        if strength and (best is None or strength > best[0]):
            best = (strength, challenge)
    return best[1] if best else None


@dataclass(frozen=True, slots=True)
class Credentials:
    """User name and password for one SIP domain. The password never prints."""

    username: str
    password: str = field(repr=False)


def _split_algorithm(algorithm: str) -> tuple[str, bool]:
    name = algorithm.upper()
    sess = name.endswith("-SESS")
    base = name[: -len("-SESS")] if sess else name
    if base not in _HASHES:
        raise DigestError(f"unsupported digest algorithm {algorithm!r}")
    return base, sess


def _choose_qop(offered: str | None) -> str | None:
    if offered is None:
        return None
    options = [token.strip().lower() for token in offered.split(",")]
    if "auth" in options:
        return "auth"
    raise DigestError(f"unsupported qop {offered!r} (only 'auth' is implemented)")


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str,
    cnonce: str,
) -> str:
    """The ``response`` value, RFC 7616 section 3.4.1 (and RFC 2617 section 3.2.2)."""
    base, sess = _split_algorithm(algorithm)
    digest = _HASHES[base]
    ha1 = digest(f"{username}:{realm}:{password}".encode())
    if sess:
        ha1 = digest(f"{ha1}:{nonce}:{cnonce}".encode())
    ha2 = digest(f"{method}:{uri}".encode())
    if qop is None:
        return digest(f"{ha1}:{nonce}:{ha2}".encode())
    return digest(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())


class DigestClient:
    """Answers Digest challenges, counting nonce use (``nc``) per nonce."""

    def __init__(self, credentials: Credentials, cnonce_factory: Callable[[], str] | None = None) -> None:
        self._credentials = credentials
        self._cnonce_factory = cnonce_factory or (lambda: secrets.token_hex(8))
        self._nonce_counts: dict[str, int] = {}

    def answer(self, challenge: AuthChallenge, method: str, uri: str) -> AuthCredentials:
        """Build the Authorization/Proxy-Authorization value for ``challenge``."""
        if challenge.scheme.lower() != "digest":
            raise DigestError(f"unsupported authentication scheme {challenge.scheme!r}")
        params = challenge.parameters
        if "nonce" not in params or "realm" not in params:
            raise DigestError("digest challenge lacks nonce or realm")
        algorithm = params.get("algorithm", "MD5")
        qop = _choose_qop(params.get("qop"))
        nonce = params["nonce"]
        count = self._nonce_counts.get(nonce, 0) + 1
        self._nonce_counts[nonce] = count
        nc = f"{count:08x}"
        cnonce = self._cnonce_factory()
        response = compute_response(
            algorithm=algorithm,
            username=self._credentials.username,
            realm=params["realm"],
            password=self._credentials.password,
            method=method,
            uri=uri,
            nonce=nonce,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
        )
        values = {
            "username": self._credentials.username,
            "realm": params["realm"],
            "nonce": nonce,
            "uri": uri,
            "response": response,
            "algorithm": algorithm,
        }
        if qop is not None:
            values.update(qop=qop, nc=nc, cnonce=cnonce)
        if "opaque" in params:
            values["opaque"] = params["opaque"]
        return AuthCredentials(scheme="Digest", parameters=CredentialParameters(**values))
