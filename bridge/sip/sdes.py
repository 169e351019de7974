"""SDES key exchange for SRTP, RFC 4568, sans-IO.

We offer AES_CM_128_HMAC_SHA1_80 and _32 (RFC 4568 section 6.2), each with a fresh
30-byte master key+salt; the answer picks one by tag. Best-effort ("optional") SRTP
offers the keys in an RTP/AVP stream and falls back to plain RTP when the answer
carries no key; "mandatory" offers RTP/SAVP only (and needs TLS signalling, since
the keys travel in the SDP).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from rtp.peer import SrtpKeys

SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
KEY_LENGTH = 30  # 16-byte master key + 14-byte master salt
_CRYPTO = re.compile(
    r"^(?P<tag>\d{1,9})\s+(?P<suite>[A-Za-z0-9_]+)\s+inline:(?P<key>[A-Za-z0-9+/=]+)(?:\|[^\s]*)?(?:\s.*)?$"
)


class SrtpMode(StrEnum):
    OFF = "off"
    OPTIONAL = "optional"
    MANDATORY = "mandatory"


class SdesError(ValueError):
    """The answer's keys are unusable, or it refused SRTP we required."""


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    tag: int
    suite: str
    key: bytes

    def value(self) -> str:
        """The ``a=crypto:`` attribute value."""
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"


def parse_crypto(value: str) -> CryptoAttribute | None:
    match = _CRYPTO.match(value.strip())
    if match is None:
        return None
    try:
        key = base64.b64decode(match["key"], validate=True)
    except (binascii.Error, ValueError):
        return None
    return CryptoAttribute(int(match["tag"]), match["suite"].upper(), key)


def offer_cryptos(random_bytes: Callable[[int], bytes]) -> list[CryptoAttribute]:
    return [CryptoAttribute(tag, suite, random_bytes(KEY_LENGTH)) for tag, suite in enumerate(SUITES, start=1)]


def keys_from_answer(offered: list[CryptoAttribute], answer_values: list[str]) -> SrtpKeys | None:
    """The agreed keys, or None when the answer has no crypto attribute (plain RTP)."""
    if not answer_values:
        return None
    for value in answer_values:
        answer = parse_crypto(value)
        if answer is None:
            continue
        for ours in offered:
            if ours.tag == answer.tag and ours.suite == answer.suite and len(answer.key) == KEY_LENGTH:
                return SrtpKeys(ours.suite, ours.key, answer.key)
    raise SdesError("the answer's a=crypto matches none of the offered suites and tags")


def answer_crypto(offer_values: list[str], ours: SrtpKeys) -> tuple[CryptoAttribute, SrtpKeys] | None:
    """Answer a far-end re-offer: their line with our suite, under their tag with our key."""
    for value in offer_values:
        offered = parse_crypto(value)
        if offered is not None and offered.suite == ours.suite and len(offered.key) == KEY_LENGTH:
            return CryptoAttribute(offered.tag, ours.suite, ours.outbound), SrtpKeys(
                ours.suite, ours.outbound, offered.key
            )
    return None
