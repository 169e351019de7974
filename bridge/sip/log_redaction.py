"""What a SIP message may show in the debug log.

Secrets in SIP messages are never printed: SDES master keys (RFC 4568 ``inline:``)
and the proof parts of digest credentials (RFC 3261 section 22.4, RFC 7616 section
3.4: ``response``, ``cnonce``, ``nonce``, ``opaque``) — a nonce with its response is
enough for an offline guess of the password. ``username``, ``realm``, ``uri``,
``algorithm``, ``qop`` and ``nc`` stay readable for troubleshooting.
"""

from __future__ import annotations

import re

from bridge.sip.digest import CredentialParameters, DigestError, parse_challenge

REDACTED = "<redacted>"
_SDES_KEY = re.compile(r"inline:[A-Za-z0-9+/=]+")
_CREDENTIAL_HEADER = re.compile(r"^(?P<name>(?:proxy-)?authorization)[ \t]*:[ \t]*(?P<value>.*?)(?P<eol>\r?\n?)$", re.I)
_READABLE = frozenset(["username", "realm", "uri", "algorithm", "qop", "nc"])


def redact_message(data: bytes) -> str:
    """The message as text for the log, with keys and digest proofs replaced by ``<redacted>``."""
    text = _SDES_KEY.sub(f"inline:{REDACTED}", data.decode(errors="replace"))
    return "".join(_redact_line(line) for line in text.splitlines(keepends=True))


def _redact_line(line: str) -> str:
    match = _CREDENTIAL_HEADER.match(line)
    if match is None:
        return line
    return f"{match['name']}: {_redact_credentials(match['value'])}{match['eol']}"


def _redact_credentials(value: str) -> str:
    try:
        credentials = parse_challenge(value)  # the same auth-param grammar (RFC 7235 section 2.1)
    except DigestError:
        return REDACTED
    shown = {key: val if key in _READABLE else REDACTED for key, val in credentials.parameters.items()}
    return f"{credentials.scheme} {CredentialParameters(**shown)}"
