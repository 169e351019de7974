"""RTMP targets: userinfo, the masked form every output shows, and what counts as a secret."""

from __future__ import annotations

import pytest

from bridge.ops.masking import mask
from bridge.rtmp.url import RtmpUrlError, parse_target

YOUTUBE_KEY = "abcd-efgh-ijkl-mnop-qrst"


def test_stream_key_is_shown_masked_with_its_tail() -> None:
    target = parse_target("rtmp://a.rtmp.youtube.com/live2", YOUTUBE_KEY)
    assert target.display() == "rtmp://a.rtmp.youtube.com/live2/••••qrst"
    assert target.display(reveal_stream=True) == f"rtmp://a.rtmp.youtube.com/live2/{YOUTUBE_KEY}"
    assert YOUTUBE_KEY in target.secrets() and YOUTUBE_KEY not in target.secrets(reveal_stream=True)


def test_short_secrets_are_masked_completely() -> None:
    assert mask("k3y") == "••••" and mask("x" * 15) == "••••" and mask("y" * 16) == "••••yyyy"
    target = parse_target("rtmp://127.0.0.1:19350/live", "call1")
    assert target.display() == "rtmp://127.0.0.1:19350/live/••••"


def test_userinfo_is_taken_out_of_the_url_and_kept_for_authentication() -> None:
    target = parse_target("rtmp://publisher:p%40ss-word@wowza.example.com/live?token=t0ken", "stream?k=v")
    assert (target.username, target.password) == ("publisher", "p@ss-word")
    assert target.tc_url == "rtmp://wowza.example.com/live?token=t0ken"  # servers never see the userinfo here
    shown = target.display()
    assert shown == "rtmp://••••@wowza.example.com/live?••••/••••?••••"
    for secret in ("publisher", "p@ss-word", "t0ken", "stream", "k=v"):
        assert secret not in shown
    assert set(target.secrets()) == {"publisher", "p@ss-word", "token=t0ken", "k=v", "stream"}


def test_same_stream_is_one_destination_whatever_the_query_or_case() -> None:
    first = parse_target("rtmp://CDN.example.com/live?token=1", "Stream")
    second = parse_target("rtmp://cdn.example.com:1935/live?token=2", "stream?x=y")
    assert first.dedupe_key() == second.dedupe_key()


@pytest.mark.parametrize(
    ("url", "stream", "message"),
    [
        ("rtmp://user@host/live", "s", "no password"),
        ("http://host/live", "s", "rtmp://"),
        ("rtmp://:secretpw@/live", "s", "no host"),
    ],
)
def test_bad_urls_are_refused_without_echoing_them(url: str, stream: str, message: str) -> None:
    with pytest.raises(RtmpUrlError, match=message) as error:
        parse_target(url, stream)
    assert "secretpw" not in str(error.value)
