"""RTMP publish authentication (authmod=adobe/llnw): responses and the no-loop state machine.

The response vectors were computed with openssl, not with our code:
  adobe: printf pub5a1tpw-good | openssl dgst -md5 -binary | base64  -> cqxrzriuHhonvF0kHvWmxA==
         printf cqxrzriuHhonvF0kHvWmxA==0paque01020304 | openssl dgst -md5 -binary | base64
  llnw:  md5 hex of "<md5(pub:live:pw-good)>:n0nce:00000001:01020304:auth:<md5(publish:/live/_definst_)>"
"""

from __future__ import annotations

from bridge.rtmp.auth import Failed, PublishAuth, Retry, adobe_response, llnw_response

CHALLENGE = (
    "[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=needauth&user=pub&salt=5a1t&challenge=c4a1&opaque=0paque"
)
NEED_AUTH = "[ AccessManager.Reject ] : [ code=403 need auth; authmod={} ] : "
AUTH_FAILED = "[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=authfailed&opaque=0paque"


def test_responses_match_vectors_computed_with_openssl() -> None:
    assert adobe_response("pub", "pw-good", "5a1t", "c4a1", "0paque", "01020304") == "oXU3pMeYRhWz6o0GTlchIA=="
    assert llnw_response("pub", "pw-good", "live", "n0nce", "01020304") == "66ca323e571ef37cb709b8308319ff94"


def test_adobe_flow_answers_one_challenge_then_gives_up_on_a_wrong_password() -> None:
    auth = PublishAuth("pub", "pw-good", "live?token=t", "adobe", nonce_source=bytes([1, 2, 3, 4]))
    assert auth.query() == "authmod=adobe&user=pub"  # the first connect already names the user
    step = auth.rejected(CHALLENGE)
    assert step == Retry("authmod=adobe&user=pub&challenge=01020304&response=oXU3pMeYRhWz6o0GTlchIA==&opaque=0paque")
    assert auth.query() == step.query  # the next connection carries the response
    failed = auth.rejected(AUTH_FAILED)
    assert isinstance(failed, Failed) and "RTMP authentication failed" in failed.reason
    assert "pw-good" not in failed.reason and "pub" not in failed.reason


def test_a_second_challenge_after_our_response_is_a_failure_not_a_loop() -> None:
    auth = PublishAuth("pub", "pw", "live", "adobe")
    assert isinstance(auth.rejected(CHALLENGE), Retry)
    assert isinstance(auth.rejected(CHALLENGE), Failed)


def test_the_server_may_ask_for_the_other_authmod_once() -> None:
    auth = PublishAuth("pub", "pw-good", "live", "adobe", nonce_source=bytes([1, 2, 3, 4]))
    assert auth.rejected(NEED_AUTH.format("llnw")) == Retry("authmod=llnw&user=pub")
    step = auth.rejected("[ AccessManager.Reject ] : [ authmod=llnw ] : ?reason=needauth&user=pub&nonce=n0nce")
    assert step == Retry(
        "authmod=llnw&user=pub&nonce=n0nce&cnonce=01020304&nc=00000001&response=66ca323e571ef37cb709b8308319ff94"
    )
    assert isinstance(auth.rejected(NEED_AUTH.format("adobe")), Failed)  # no ping-pong between authmods


def test_reconnects_start_with_a_fresh_challenge_and_plain_refusals_are_not_ours() -> None:
    auth = PublishAuth("pub", "pw", "live", "adobe")
    auth.rejected(CHALLENGE)
    auth.published()
    assert auth.query() == "authmod=adobe&user=pub" and isinstance(auth.rejected(CHALLENGE), Retry)
    assert auth.rejected("Connection refused by policy") is None
    anonymous = PublishAuth("", "", "live")
    assert anonymous.query() == ""
    needs = anonymous.rejected(NEED_AUTH.format("adobe"))
    assert isinstance(needs, Failed) and "rtmp://user:password@host/app" in needs.reason
