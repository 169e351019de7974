"""SDP offer serialisation and answer parsing."""

from __future__ import annotations

import pytest

from bridge.sip.codecs import describe, negotiate, offered_formats
from bridge.sip.sdp import Direction, SdpError, build_offer, mirrored_media, parse_sdp
from rtp.codecs import CODECS


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
    assert answer.audio().direction is Direction.SENDONLY
    chosen = negotiate(["pcmu"], answer.audio())
    assert chosen is not None and chosen.codec.name == "pcmu" and chosen.event_payload_type == 101
    assert [m.kind for m in answer.media] == ["video", "audio"]  # the rejected video line is kept


def test_answer_without_pcmu_is_detected() -> None:
    answer = parse_sdp(b"v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 4000 RTP/AVP 8\r\n")
    assert negotiate(["pcmu"], answer.audio()) is None
    assert describe(answer.audio()) == "PCMA/8000"
    chosen = negotiate(["pcmu", "pcma"], answer.audio())
    assert chosen is not None and chosen.codec.name == "pcma" and chosen.event_payload_type is None


def test_offer_lists_the_codecs_in_order_with_events_per_clock() -> None:
    """RFC 3551 table 4 (PCMU 0, PCMA 8, G722 9 at 8000 Hz), RFC 7587 4.1 (opus/48000/2)."""
    formats = offered_formats(["opus", "g722", "pcma", "pcmu"])
    offer = build_offer("192.0.2.2", 20000, Direction.RECVONLY, 5, formats=formats).serialize()
    assert b"m=audio 20000 RTP/AVP 111 9 8 0 110 101\r\n" in offer
    assert b"a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=20;useinbandfec=1\r\n" in offer
    assert b"a=rtpmap:9 G722/8000\r\n" in offer and b"a=rtpmap:8 PCMA/8000\r\n" in offer
    assert b"a=rtpmap:110 telephone-event/48000\r\na=fmtp:110 0-15\r\n" in offer
    assert b"a=rtpmap:101 telephone-event/8000\r\n" in offer
    parsed = parse_sdp(offer).audio()
    assert parsed.formats[0].channels == 2 and parsed.formats[0].parameters == "minptime=20;useinbandfec=1"


def test_the_far_ends_order_wins_and_dynamic_types_match_by_name_and_clock() -> None:
    answer = parse_sdp(
        b"v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 4000 RTP/AVP 96 9 0 97\r\n"
        b"a=rtpmap:96 OPUS/48000/2\r\na=rtpmap:97 telephone-event/48000\r\n"
    )
    chosen = negotiate(["pcmu", "g722", "opus"], answer.audio())
    assert chosen is not None and (chosen.codec.name, chosen.payload_type, chosen.event_payload_type) == (
        "opus",
        96,
        97,
    )
    assert CODECS["g722"].audio_rate == 16000 and CODECS["g722"].samples_per_tick == 2  # RFC 3551 4.5.2
    wrong_clock = parse_sdp(b"v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus/16000\r\n")
    assert negotiate(["opus"], wrong_clock.audio()) is None


def test_an_answer_mirrors_every_offered_line_and_rejects_the_others_with_port_0() -> None:
    """RFC 3264 section 6: as many m= lines as the offer, in its order; port 0 rejects."""
    offer = parse_sdp(
        b"v=0\r\nc=IN IP4 192.0.2.9\r\nm=video 5000 RTP/AVP 96 34\r\na=rtpmap:96 VP8/90000\r\n"
        b"m=audio 4000 RTP/AVP 0\r\nm=application 5002 UDP/BFCP *\r\nm=audio 4100 RTP/AVP 0\r\n"
    )
    ours = build_offer("192.0.2.2", 20000, Direction.RECVONLY, 1).audio()
    lines = mirrored_media(offer, [ours])
    answer = build_offer("192.0.2.2", 20000, Direction.RECVONLY, 1)
    answer.media = lines
    text = answer.serialize()
    assert [line for line in text.split(b"\r\n") if line.startswith(b"m=")] == [
        b"m=video 0 RTP/AVP 96",
        b"m=audio 20000 RTP/AVP 0 101",
        b"m=application 0 UDP/BFCP *",
        b"m=audio 0 RTP/AVP 0",
    ]
    assert len(parse_sdp(text).media) == 4


@pytest.mark.parametrize(
    "body",
    [
        b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n",  # no c=
        b"v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio x RTP/AVP 0\r\n",
        b"v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 4000 RTP/AVP zero\r\n",
        b"v=0\r\nc=IN IP4 media.example.com\r\nm=audio 4000 RTP/AVP 0\r\n",  # a name: no lookup on the loop
        b"v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 rtp.example.com\r\n",
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
