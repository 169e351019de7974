"""SDP offer serialisation and answer parsing."""

from __future__ import annotations

import pytest

from bridge.sip.sdp import Direction, SdpError, accepts_pcmu, build_offer, parse_sdp


def test_offer_is_pcmu_with_telephone_event_and_the_asked_direction() -> None:
    offer = build_offer("192.0.2.2", 20000, Direction.RECVONLY, session_id=42).serialize()
    assert offer == (
        b"v=0\r\no=- 42 42 IN IP4 192.0.2.2\r\ns=sip-rtmp-bridge\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n"
        b"m=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        b"a=fmtp:101 0-15\r\na=ptime:20\r\na=recvonly\r\n"
    )
    assert b"a=sendrecv" in build_offer("192.0.2.2", 20000, Direction.SENDRECV, 1).serialize()


def test_answer_media_address_prefers_media_level_connection() -> None:
    answer = parse_sdp(
        b"v=0\r\no=x 1 2 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
        b"m=video 0 RTP/AVP 96\r\nm=audio 40000 RTP/AVP 0 101\r\nc=IN IP4 198.51.100.7\r\n"
        b"a=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n"
    )
    assert answer.audio_address() == ("198.51.100.7", 40000)
    assert answer.audio().direction is Direction.SENDONLY and accepts_pcmu(answer)


def test_answer_without_pcmu_is_detected() -> None:
    answer = parse_sdp(b"v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 4000 RTP/AVP 8\r\n")
    assert not accepts_pcmu(answer)


@pytest.mark.parametrize(
    "body",
    [
        b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n",  # no c=
        b"v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio x RTP/AVP 0\r\n",
        b"v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 4000 RTP/AVP zero\r\n",
        b"\xff\xfe",
    ],
)
def test_unusable_answers_raise_sdp_error(body: bytes) -> None:
    with pytest.raises(SdpError):
        parse_sdp(body).audio_address()


def test_rejected_audio_stream_has_no_address() -> None:
    with pytest.raises(SdpError):
        parse_sdp(b"v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 0 RTP/AVP 0\r\n").audio()


def test_ipv6_offer_uses_ip6_address_type() -> None:
    offer = build_offer("::1", 20000, Direction.RECVONLY, session_id=1).serialize()
    assert b"o=- 1 1 IN IP6 ::1\r\n" in offer and b"c=IN IP6 ::1\r\n" in offer
    assert parse_sdp(offer).audio_address() == ("::1", 20000)
