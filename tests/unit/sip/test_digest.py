"""Digest computation against the RFC test vectors, and the client's nonce counting."""

from __future__ import annotations

import pytest
from sipmessage import AuthChallenge

from bridge.sip.digest import (
    Credentials,
    DigestClient,
    DigestError,
    compute_response,
    parse_challenge,
    strongest_challenge,
)

RFC7616 = dict(
    username="Mufasa",
    realm="http-auth@example.org",
    password="Circle of Life",
    method="GET",
    uri="/dir/index.html",
    nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    qop="auth",
    nc="00000001",
    cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
)


def test_rfc2617_section_3_5_vector() -> None:
    response = compute_response(
        algorithm="MD5",
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


def test_rfc7616_section_3_9_1_md5_and_sha256_vectors() -> None:
    assert compute_response(algorithm="MD5", **RFC7616) == "8ca523f5e9506fed4657c9700eebdbec"
    assert compute_response(algorithm="SHA-256", **RFC7616) == (
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    )


def test_sess_variant_differs_and_qop_absent_uses_rfc2069_form() -> None:
    plain = compute_response(algorithm="MD5", **RFC7616)
    assert compute_response(algorithm="MD5-sess", **RFC7616) != plain
    no_qop = dict(RFC7616, qop=None)
    assert compute_response(algorithm="MD5", **no_qop) != plain


def test_client_answers_407_with_counted_nonce_and_echoed_opaque() -> None:
    client = DigestClient(Credentials("alice", "pw"), cnonce_factory=lambda: "abc")
    challenge = parse_challenge('Digest realm="r", nonce="n1", qop="auth,auth-int", opaque="op"')
    first = client.answer(challenge, "INVITE", "sip:bob@example.com")
    second = client.answer(challenge, "INVITE", "sip:bob@example.com")
    assert first.parameters is not None and second.parameters is not None
    assert first.parameters["nc"] == "00000001" and second.parameters["nc"] == "00000002"
    assert first.parameters["opaque"] == "op"
    assert first.parameters["response"] == compute_response(
        algorithm="MD5",
        username="alice",
        realm="r",
        password="pw",
        method="INVITE",
        uri="sip:bob@example.com",
        nonce="n1",
        qop="auth",
        nc="00000001",
        cnonce="abc",
    )
    text = str(first)
    assert "qop=auth," in text and 'uri="sip:bob@example.com"' in text and "pw" not in text


def test_unsupported_challenges_raise_digest_error() -> None:
    client = DigestClient(Credentials("alice", "pw"))
    with pytest.raises(DigestError):
        client.answer(AuthChallenge.parse('Basic realm="r"'), "INVITE", "sip:x@y")
    with pytest.raises(DigestError):
        client.answer(AuthChallenge.parse('Digest realm="r", nonce="n", algorithm=SHA-512-256'), "INVITE", "sip:x@y")
    with pytest.raises(DigestError):
        client.answer(AuthChallenge.parse('Digest realm="r", nonce="n", qop="auth-int"'), "INVITE", "sip:x@y")


def test_password_not_in_repr() -> None:
    assert "secret" not in repr(Credentials("alice", "secret"))


def test_challenge_parser_keeps_quoted_commas_and_escapes() -> None:
    challenge = parse_challenge('Digest realm="a\\"b", nonce="x,y", qop="auth,auth-int", stale=TRUE')
    assert challenge.parameters["realm"] == 'a"b'
    assert challenge.parameters["nonce"] == "x,y"
    assert challenge.parameters["qop"] == "auth,auth-int"
    assert challenge.parameters["stale"] == "TRUE"
    with pytest.raises(DigestError):
        parse_challenge('Digest realm="unterminated')


def test_strongest_challenge_prefers_sha256_and_skips_unknown() -> None:
    chosen = strongest_challenge(
        [
            'Digest realm="r", nonce="1", algorithm=MD5',
            'Digest realm="r", nonce="2", algorithm=SHA-256',
            'Digest realm="r", nonce="3", algorithm=SHA-512-256',
            "garbage",
        ]
    )
    assert chosen is not None and chosen.parameters["nonce"] == "2"
    assert strongest_challenge(['Basic realm="r"']) is None
