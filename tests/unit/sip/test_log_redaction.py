"""SIP debug logging: digest proofs and SDES keys never printed (RFC 2617 section 3.5 example)."""

from __future__ import annotations

from bridge.sip.log_redaction import redact_message

# RFC 2617 section 3.5's Authorization header, as a SIP request would carry it.
RFC2617_CREDENTIALS = (
    'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
    'uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", '
    'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
PROOFS = ("dcd98b7102dd2f0e8b11d0f600bfb0c093", "0a4f113b", "6629fae49393a05397450978507c4ef1", "5ccc069c403ebaf9")


def request_with(header: str) -> bytes:
    return (
        "INVITE sip:uas@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n"
        f"{header}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def test_digest_proofs_are_redacted_in_both_credential_headers() -> None:
    for name in ("Authorization", "Proxy-Authorization", "proxy-authorization"):
        text = redact_message(request_with(f"{name}: {RFC2617_CREDENTIALS}"))
        assert not [proof for proof in PROOFS if proof in text], text
        line = next(line for line in text.splitlines() if line.lower().startswith(name.lower()))
        assert 'username="Mufasa"' in line and 'realm="testrealm@host.com"' in line and "qop=auth" in line
        assert line.count('"<redacted>"') == 4  # nonce, cnonce, response, opaque
        assert text.endswith("Content-Length: 0\r\n\r\n")


def test_malformed_credentials_are_redacted_whole_and_other_headers_untouched() -> None:
    text = redact_message(request_with('Proxy-Authorization: Digest response="abc'))
    assert 'response="abc' not in text and "Proxy-Authorization: <redacted>" in text
    challenge = 'Proxy-Authenticate: Digest realm="r", nonce="n1", qop="auth"'
    assert challenge in redact_message(request_with(challenge))  # a challenge alone proves nothing
