"""Auth rules: required off loopback, optional on it; tokens by digest; read scope; CORS off by default."""

from __future__ import annotations

import pytest

from bridge.config import AuthConfig, TokenConfig
from rest.auth import Authenticator, TokenBucket, hash_token


@pytest.mark.parametrize(
    ("listen", "required"),
    [
        ("127.0.0.1:9091", False),
        ("[::1]:9091", False),
        ("localhost:9091", False),
        ("0.0.0.0:9091", True),
        ("192.0.2.10:9091", True),
    ],
)
def test_tokens_are_required_unless_loopback(listen: str, required: bool) -> None:
    assert Authenticator(AuthConfig(), listen).required is required
    assert Authenticator(AuthConfig(required="always"), "127.0.0.1:1").required is True
    assert Authenticator(AuthConfig(required="never"), "0.0.0.0:1").required is False


def test_tokens_are_matched_by_digest_with_their_scope() -> None:
    config = AuthConfig(tokens=[TokenConfig(sha256=hash_token("s3cret"), scope="read", name="dash")])
    auth = Authenticator(config, "0.0.0.0:1")
    caller = auth.identify("Bearer s3cret")
    assert caller is not None and (caller.name, caller.scope) == ("dash", "read")
    assert (
        auth.identify("Bearer wrong") is None and auth.identify("Basic s3cret") is None and auth.identify(None) is None
    )


def test_token_bucket_allows_bursts_then_paces() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take("t", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("t", 0.0) == pytest.approx(0.5)
    assert bucket.take("t", 0.6) == 0.0 and bucket.take("other", 0.0) == 0.0
