"""Our SDP offer for a call we place (RFC 3264 section 5), sans-IO.

One audio line with the codecs to offer and telephone-event, 20 ms packets; an H.264 line when
the call has a video port; SDES keys of its own on every line when SRTP is on (RFC 4568 section
6.1), under RTP/SAVP when it is mandatory. The session decides what to offer (:class:`OfferPlan`);
how that is written as SDP lives here, beside the answer's reading (:mod:`bridge.sip.offer_answer`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bridge.sip.codecs import offered_formats, video_offer
from bridge.sip.sdes import CryptoAttribute, SrtpMode, offer_cryptos
from bridge.sip.sdp import Direction, SessionDescription, build_offer


@dataclass(frozen=True, slots=True)
class OfferPlan:
    """What a call offers: where it receives, which codecs, whether it sends, SRTP."""

    host: str
    audio_port: int
    codecs: tuple[str, ...]
    sends_media: bool  # sendrecv (we send keep-alive silence or the slate), else recvonly
    video_port: int = 0  # 0: no m=video line
    sends_video: bool = False
    srtp: SrtpMode = SrtpMode.OFF


def call_offer(
    plan: OfferPlan, session_id: int, random_bytes: Callable[[int], bytes]
) -> tuple[SessionDescription, list[CryptoAttribute]]:
    """The offer, and the audio line's offered keys (the answer picks one of them)."""
    cryptos = offer_cryptos(random_bytes) if plan.srtp is not SrtpMode.OFF else []
    offer = build_offer(
        plan.host,
        plan.audio_port,
        Direction.SENDRECV if plan.sends_media else Direction.RECVONLY,
        session_id,
        crypto=[crypto.value() for crypto in cryptos],
        secure_profile=plan.srtp is SrtpMode.MANDATORY,
        formats=offered_formats(list(plan.codecs)),
    )
    if plan.video_port:
        video = video_offer(plan.video_port)
        video.direction = Direction.SENDRECV if plan.sends_video else Direction.RECVONLY  # ours: the slate
        if plan.srtp is not SrtpMode.OFF:
            video.crypto = [crypto.value() for crypto in offer_cryptos(random_bytes)]
            video.protocol = "RTP/SAVP" if plan.srtp is SrtpMode.MANDATORY else "RTP/AVP"
        offer.media.append(video)
    return offer, cryptos
