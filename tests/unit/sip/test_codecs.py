"""Codecs other than PCMU: offer/answer (RFC 3264), A-law tables, G.722 timestamps, silence packets."""

from __future__ import annotations

import audioop  # the standard library's G.711 codec: an implementation we did not write
import base64
import struct

import numpy as np
import pytest
from pydantic import ValidationError

from bridge.config import MediaConfig
from bridge.sip.codecs import negotiate_video, offered_formats, video_offer
from bridge.sip.offer_answer import OfferAnswer
from bridge.sip.sdp import Direction, SdpError, build_offer, parse_sdp
from rest.models import Connection
from rtp.g711 import PCMA_SILENCE, decode_alaw
from rtp.playout import PlayoutBuffer
from rtp.receiver import RtpReceiver
from rtp.sender import SilenceSender

FAR = ("192.0.2.9", 40000)


def _negotiator(codecs: list[str]) -> OfferAnswer:
    return OfferAnswer(build_offer("192.0.2.2", 20000, Direction.RECVONLY, 7, formats=offered_formats(codecs)))


def _sdp(media: str) -> bytes:
    return ("v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n" + media).encode()


def test_alaw_table_matches_the_standard_librarys_g711() -> None:
    codes = bytes(range(256))
    expected = np.frombuffer(audioop.alaw2lin(codes, 2), np.int16)
    assert np.array_equal(decode_alaw(codes), expected)
    assert decode_alaw(bytes([PCMA_SILENCE]))[0] == np.frombuffer(audioop.alaw2lin(b"\xd5", 2), np.int16)[0]
    assert audioop.lin2alaw(b"\x00\x00", 2) == bytes([PCMA_SILENCE])


def test_the_answer_picks_the_codec_and_later_answers_keep_it() -> None:
    oa = _negotiator(["pcmu", "pcma", "g722"])
    remote = oa.accept_answer(_sdp("m=audio 40000 RTP/AVP 9 101\r\na=rtpmap:101 telephone-event/8000\r\n"))
    assert (remote.codec, remote.payload_type, remote.event_payload_type, remote.telephone_event) == (
        "g722",
        9,
        101,
        True,
    )
    # RFC 3264 8.3.2: later SDP of ours lists only what is in use.
    assert b"m=audio 20000 RTP/AVP 9 101\r\n" in oa.offer_again()
    with pytest.raises(SdpError, match="g722"):  # a re-offer without G.722 cannot be answered
        oa.answer_offer(_sdp("m=audio 40000 RTP/AVP 0 8\r\n"))


def test_no_common_codec_names_both_sides_and_the_fix() -> None:
    oa = _negotiator(["pcmu"])
    with pytest.raises(SdpError) as error:
        oa.accept_answer(_sdp("m=audio 40000 RTP/AVP 8\r\n"))
    assert "pcmu" in str(error.value) and "PCMA/8000" in str(error.value) and "codecs" in str(error.value)


def test_a_reinvite_adding_video_gets_an_answer_with_both_lines_video_rejected() -> None:
    """RFC 3264 section 6: the answer to an audio+video re-offer has two m= lines, video at port 0."""
    oa = _negotiator(["pcmu"])
    oa.accept_answer(_sdp("m=audio 40000 RTP/AVP 0\r\n"))
    body = oa.answer_offer(
        _sdp("m=audio 40000 RTP/AVP 0\r\nm=video 40002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=sendrecv\r\n")
    )
    answer = parse_sdp(body)
    assert [(m.kind, m.port) for m in answer.media] == [("audio", 20000), ("video", 0)]
    assert answer.media[1].formats[0].payload_type == 96
    version = answer.session_version
    again = parse_sdp(oa.answer_offer(_sdp("m=audio 40000 RTP/AVP 0\r\n")))  # video dropped again
    assert len(again.media) == 1 and again.session_version == version + 1  # the lines changed: one more


def test_g722_timestamps_count_two_samples_per_tick() -> None:
    """RFC 3551 4.5.2: 20 ms of G.722 is 320 samples at 16 kHz but 160 RTP timestamp units."""
    buffer = PlayoutBuffer(rate=16000, samples_per_tick=2, initial_delay=0)
    receiver = RtpReceiver(FAR, playout=buffer, audio_pt=9, decode=lambda payload: np.full(320, 1000, np.int16))
    for n in range(5):
        header = struct.pack("!BBHII", 0x80, 9, n, 1000 + 160 * n, 0x1234)
        receiver.datagram_received(header + bytes(160), FAR, n * 0.02)
    assert buffer.stats.accepted == 5 and buffer.stats.duplicate == 0 and buffer.depth == 5 * 320
    assert np.all(buffer.pull(1600, 0.1) == 1000)  # contiguous: no gap, no overlap


def test_silence_sender_uses_the_negotiated_payload_type_and_clock() -> None:
    sender = SilenceSender(
        0x55, 1, 1000, 0.0, payload_type=111, silence=b"\xf8\xff\xfe", ticks_per_frame=960, event_payload_type=110
    )
    first, second = sender.poll(0.0)[0], sender.poll(0.02)[0]
    assert first[1] & 0x7F == 111 and first[12:] == b"\xf8\xff\xfe"
    assert struct.unpack("!I", second[4:8])[0] - struct.unpack("!I", first[4:8])[0] == 960
    sender.send_dtmf("5")
    event = sender.poll(0.04)[0]
    assert event[1] & 0x7F == 110 and struct.unpack("!H", event[14:16])[0] == 960  # duration in 48 kHz units


def test_codec_lists_are_checked_with_a_clear_message() -> None:
    assert MediaConfig().codecs == ["pcmu"]
    assert Connection.model_validate(_connection("PCMA, pcmu")).codecs == ["pcma", "pcmu"]  # /RESTCall leniency
    assert Connection.model_validate(_connection(["opus", "g722"])).codecs == ["opus", "g722"]
    for wrong, words in (
        (["gsm"], "unknown codec 'gsm'"),
        (["h264"], "at least one audio codec"),
        ([], "at least one"),
    ):
        with pytest.raises(ValidationError, match=words):
            Connection.model_validate(_connection(wrong))


def _connection(codecs: object) -> dict[str, object]:
    return {"sipLogin": "a", "sipPassword": "b", "sipDomain": "example.com", "codecs": codecs}


def test_video_offer_lists_h264_profiles_modes_and_feedback() -> None:
    """RFC 6184 8.1 (profile-level-id, packetization-mode), RFC 4585 4.2 / RFC 5104 7.1 (rtcp-fb)."""
    offer = build_offer("192.0.2.2", 20000, Direction.RECVONLY, 5)
    offer.media.append(video_offer(20002))
    text = offer.serialize()
    assert b"m=video 20002 RTP/AVP 96 97 98 99 100\r\n" in text
    assert b"a=rtpmap:96 H264/90000\r\na=fmtp:96 profile-level-id=42e01f;packetization-mode=1\r\n" in text
    assert b"a=fmtp:99 profile-level-id=640028;packetization-mode=1\r\n" in text
    assert b"a=fmtp:100 profile-level-id=42e01f;packetization-mode=0\r\n" in text
    assert b"a=rtcp-fb:* nack pli\r\na=rtcp-fb:* ccm fir\r\n" in text
    parsed = parse_sdp(text)
    assert [m.kind for m in parsed.media] == ["audio", "video"] and parsed.audio().port == 20000


def test_video_answer_gives_payload_type_sprop_and_feedback() -> None:
    answer = parse_sdp(
        _sdp(
            "m=audio 40000 RTP/AVP 0\r\nm=video 40002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n"
            "a=fmtp:97 packetization-mode=1; sprop-parameter-sets=Z0LgH9oCgA==,aM48gA==\r\n"
            "a=rtcp-fb:97 nack pli\r\na=rtcp-fb:98 ccm fir\r\n"
        )
    )
    video = negotiate_video(answer.media[1])
    assert video is not None and video.payload_type == 97 and video.sprop == "Z0LgH9oCgA==,aM48gA=="
    assert video.pli and not video.fir  # FIR was allowed for another payload type only
    rejected = parse_sdp(_sdp("m=audio 40000 RTP/AVP 0\r\nm=video 0 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n"))
    assert negotiate_video(rejected.media[1]) is None


def _video_negotiator() -> OfferAnswer:
    offer = build_offer("192.0.2.2", 20000, Direction.RECVONLY, 7)
    offer.media.append(video_offer(20002))
    offer.media[1].direction = Direction.RECVONLY
    return OfferAnswer(offer)


def test_accepted_video_is_kept_in_later_answers_and_declined_video_stays_rejected() -> None:
    oa = _video_negotiator()
    remote = oa.accept_answer(
        _sdp(
            "m=audio 40000 RTP/AVP 0\r\nm=video 40002 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\n"
            "a=fmtp:99 packetization-mode=1;profile-level-id=42e01f\r\na=rtcp-fb:* nack pli\r\na=sendonly\r\n"
        )
    )
    assert remote.video is not None and remote.video.address == ("192.0.2.9", 40002) and remote.video.pli
    hold = parse_sdp(
        oa.answer_offer(
            _sdp("m=audio 40000 RTP/AVP 0\r\na=sendonly\r\nm=video 40002 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\n")
        )
    )
    assert [(m.kind, m.port, m.direction.value) for m in hold.media] == [
        ("audio", 20000, "recvonly"),
        ("video", 20002, "recvonly"),
    ]
    declined = _video_negotiator()
    assert declined.accept_answer(_sdp("m=audio 40000 RTP/AVP 0\r\nm=video 0 RTP/AVP 99\r\n")).video is None
    assert b"m=video 0 RTP/AVP 96 " in declined.offer_again()  # RFC 3264 8.2: the line stays, at port 0


VIDEO_ANSWER = "m=video 40002 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\na=fmtp:99 packetization-mode=1\r\n"


def _secure_video_negotiator() -> tuple[OfferAnswer, bytes]:
    key = bytes(range(30))
    offer = build_offer("192.0.2.2", 20000, Direction.RECVONLY, 7)
    offer.media.append(video_offer(20002))
    offer.media[1].crypto = [f"1 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(key).decode()}"]
    return OfferAnswer(offer), key


def test_the_video_line_gets_keys_of_its_own_and_plain_video_is_refused_when_keys_were_offered() -> None:
    """RFC 4568 6.1: keys per media line; an answer without the video's crypto → video declined."""
    theirs = bytes(range(100, 130))
    inline = base64.b64encode(theirs).decode()
    oa, ours = _secure_video_negotiator()
    remote = oa.accept_answer(
        _sdp(f"m=audio 40000 RTP/AVP 0\r\n{VIDEO_ANSWER}a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{inline}\r\n")
    )
    assert remote.video is not None and remote.video.srtp is not None
    assert (remote.video.srtp.outbound, remote.video.srtp.inbound) == (ours, theirs)
    plain, _ = _secure_video_negotiator()
    assert plain.accept_answer(_sdp(f"m=audio 40000 RTP/AVP 0\r\n{VIDEO_ANSWER}")).video is None
    assert b"m=video 0 " in plain.offer_again()
    rekeyed = bytes(range(50, 80))
    fresh = base64.b64encode(rekeyed).decode()
    reoffer = f"m=audio 40000 RTP/AVP 0\r\n{VIDEO_ANSWER}a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{fresh}\r\n"
    answer = parse_sdp(oa.answer_offer(_sdp(reoffer)))
    assert answer.media[1].crypto == [f"7 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(ours).decode()}"]
    assert oa.remote is not None and oa.remote.video is not None and oa.remote.video.srtp is not None
    assert oa.remote.video.srtp.inbound == rekeyed  # RFC 4568 7.1.4: their new key, under their tag
