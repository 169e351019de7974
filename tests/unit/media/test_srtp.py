"""SDES negotiation (RFC 4568), SRTP protection round trip, and keys kept out of logs."""

from __future__ import annotations

import base64
import os

import pytest

from bridge.media.srtp import SrtpTransform
from bridge.sip.log_redaction import redact_message as redact
from bridge.sip.offer_answer import OfferAnswer
from bridge.sip.sdes import KEY_LENGTH, SrtpKeys, SrtpMode, keys_from_answer, offer_cryptos, parse_crypto
from bridge.sip.sdp import Direction, SdpError, build_offer
from rtp.packet import RtpPacket

KEY_A, KEY_B = bytes(range(30)), bytes(range(30, 60))


def answer(protocol: str = "RTP/SAVP", crypto: str | None = None) -> bytes:
    line = f"a=crypto:{crypto}\r\n" if crypto else ""
    return (
        "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
        f"m=audio 40000 {protocol} 0\r\n{line}a=sendrecv\r\n"
    ).encode()


def negotiator(mode: SrtpMode) -> tuple[OfferAnswer, list[str]]:
    cryptos = offer_cryptos(lambda n: KEY_A[:n])
    values = [c.value() for c in cryptos]
    offer = build_offer(
        "192.0.2.2", 20000, Direction.RECVONLY, 1, crypto=values, secure_profile=mode is SrtpMode.MANDATORY
    )
    return OfferAnswer(offer, mode, cryptos), values


def test_offer_carries_both_suites_with_30_byte_keys() -> None:
    oa, values = negotiator(SrtpMode.MANDATORY)
    body = oa.local_bytes()
    assert b"m=audio 20000 RTP/SAVP 0 101" in body
    parsed = [parse_crypto(v) for v in values]
    assert [(c.tag, c.suite, len(c.key)) for c in parsed if c] == [
        (1, "AES_CM_128_HMAC_SHA1_80", KEY_LENGTH),
        (2, "AES_CM_128_HMAC_SHA1_32", KEY_LENGTH),
    ]


def test_answer_selects_keys_by_tag_and_suite() -> None:
    oa, _ = negotiator(SrtpMode.MANDATORY)
    remote = oa.accept_answer(answer(crypto=f"2 AES_CM_128_HMAC_SHA1_32 inline:{base64.b64encode(KEY_B).decode()}"))
    assert remote.srtp == SrtpKeys("AES_CM_128_HMAC_SHA1_32", KEY_A, KEY_B)
    assert oa.local_bytes().count(b"a=crypto:") == 1  # we now describe only the agreed key


def test_mandatory_refused_and_optional_falls_back() -> None:
    oa, _ = negotiator(SrtpMode.MANDATORY)
    with pytest.raises(SdpError, match="refused SRTP"):
        oa.accept_answer(answer(protocol="RTP/AVP"))
    optional, _ = negotiator(SrtpMode.OPTIONAL)
    assert optional.accept_answer(answer(protocol="RTP/AVP")).srtp is None


def test_answer_with_unknown_tag_is_unusable() -> None:
    cryptos = offer_cryptos(os.urandom)
    with pytest.raises(ValueError):
        keys_from_answer(cryptos, ["9 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40])


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
def test_srtp_round_trip_and_tamper_detection(suite: str) -> None:
    ours = SrtpTransform(SrtpKeys(suite, KEY_A, KEY_B))
    theirs = SrtpTransform(SrtpKeys(suite, KEY_B, KEY_A))
    packet = RtpPacket(0, 7, 1120, 0xABCD, b"\xff" * 160).serialize()
    protected = theirs.protect(packet)
    assert protected != packet and len(protected) > len(packet)
    assert ours.unprotect(protected) == packet
    tampered = protected[:-1] + bytes([protected[-1] ^ 1])
    assert ours.unprotect(tampered) is None and ours.failures == 1


def test_sdes_keys_are_redacted_from_logged_sip() -> None:
    key = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3"
    message = b"INVITE sip:a@b SIP/2.0\r\n\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key + b"\r\n"
    text = redact(message)
    assert "QUJDREVG" not in text and "inline:<redacted>" in text
