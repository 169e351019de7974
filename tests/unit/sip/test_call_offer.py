"""Our offer for a placed call, read line by line as RFC 4566/3264/4568 write it."""

from __future__ import annotations

import itertools

from bridge.sip.call_offer import OfferPlan, call_offer
from bridge.sip.sdes import SrtpMode

DRAWS = itertools.count(1)


def fixed_random(size: int) -> bytes:
    """Bytes that differ at each draw (the video line's keys must differ from the audio's)."""
    return bytes([next(DRAWS) % 256]) * size


def lines(plan: OfferPlan) -> list[str]:
    offer, _ = call_offer(plan, 4242, fixed_random)
    return offer.serialize().decode().split("\r\n")


def test_a_receive_only_audio_offer() -> None:
    sdp = lines(OfferPlan("192.0.2.10", 40000, ("pcmu",), sends_media=False))
    assert sdp[:5] == ["v=0", "o=- 4242 4242 IN IP4 192.0.2.10", "s=sip-rtmp-bridge", "c=IN IP4 192.0.2.10", "t=0 0"]
    assert "m=audio 40000 RTP/AVP 0 101" in sdp
    assert "a=rtpmap:101 telephone-event/8000" in sdp and "a=ptime:20" in sdp
    assert "a=recvonly" in sdp and not any(line.startswith("m=video") for line in sdp)


def test_a_sending_call_with_video_offers_h264_on_its_own_port() -> None:
    sdp = lines(OfferPlan("192.0.2.10", 40000, ("pcmu", "h264"), sends_media=True, video_port=40002, sends_video=True))
    video_at = next(i for i, line in enumerate(sdp) if line.startswith("m=video 40002 RTP/AVP "))
    assert sdp.index("a=sendrecv") < video_at  # audio sendrecv
    assert "a=sendrecv" in sdp[video_at:] and any("H264/90000" in line for line in sdp[video_at:])


def test_mandatory_srtp_puts_its_own_keys_on_every_line() -> None:
    plan = OfferPlan("192.0.2.10", 40000, ("pcmu",), sends_media=True, video_port=40002, srtp=SrtpMode.MANDATORY)
    offer, audio_keys = call_offer(plan, 1, fixed_random)
    sdp = offer.serialize().decode().split("\r\n")
    assert "m=audio 40000 RTP/SAVP 0 101" in sdp and any(line.startswith("m=video 40002 RTP/SAVP") for line in sdp)
    cryptos = [line for line in sdp if line.startswith("a=crypto:")]
    audio = [line for line in cryptos if line.removeprefix("a=crypto:") in [key.value() for key in audio_keys]]
    assert len(audio) == len(audio_keys) == 2 and len(cryptos) == 4  # AES_CM_128 with 80- and 32-bit tags
    assert len(set(cryptos)) == len(cryptos)  # the video line's keys are its own (RFC 4568 6.1)
    video_at = next(i for i, line in enumerate(sdp) if line.startswith("m=video"))
    assert "a=recvonly" in sdp[video_at:]  # no video of ours on an audio-only call


def test_optional_srtp_offers_keys_under_rtp_avp() -> None:
    sdp = lines(OfferPlan("192.0.2.10", 40000, ("pcmu",), sends_media=True, srtp=SrtpMode.OPTIONAL))
    assert "m=audio 40000 RTP/AVP 0 101" in sdp and any(line.startswith("a=crypto:1 AES_CM_128") for line in sdp)
