"""RTP from WebSocket media (hand-checked header bytes), per-track playout and mixing, signatures, config."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from twilio.request_validator import RequestValidator

from bridge.ingest.config import IngestConfig, IngestRoute
from bridge.ingest.events import AudioReceived
from bridge.ingest.feed import RtpFeed
from bridge.ingest.signature import token_valid, twilio_signature_valid
from bridge.media.feed_tracks import FeedTracks
from rtp.playout import PlayoutBuffer
from rtp.receiver import RtpReceiver

FEED = ("127.0.0.1", 40000)


def test_pcmu_message_becomes_one_rtp_packet_numbered_from_its_timestamp() -> None:
    feed = RtpFeed("pcmu", 8000)
    (packet,) = feed.packets_for(AudioReceived("inbound", 9, 480, b"\x7f" * 160))
    # V=2 P=0 X=0 CC=0 | M=0 PT=0 | seq 3 (480 / 160) | ts 480 | SSRC 0x1A6E5700 (track 0)
    assert packet[:12] == bytes.fromhex("80 00 0003 000001e0 1a6e5700")
    assert packet[12:] == b"\x7f" * 160
    (second,) = feed.packets_for(AudioReceived("outbound", 1, 0, b"\x7f" * 160))
    assert second[8:12] == bytes.fromhex("1a6e5701")  # the second track's SSRC


def test_s16le_message_is_split_into_20ms_packets() -> None:
    feed = RtpFeed("l16", 24000)
    first, second = feed.packets_for(AudioReceived("mixed", 0, 960, bytes(range(256)) * 7 + bytes(128)))  # 40 ms
    assert first[:12] == bytes.fromhex("80 60 0002 000003c0 1a6e5700")  # PT 96, seq 960/480, ts 960
    assert second[:12] == bytes.fromhex("80 60 0003 000005a0 1a6e5700")  # ts 1440 (+480 samples)
    assert len(first) - 12 == 960 and len(second) - 12 == 960


def _receiver() -> RtpReceiver:
    return RtpReceiver(FEED, playout=PlayoutBuffer(encoding="linear", rate=8000), decode=_linear)


def _linear(payload: bytes) -> np.ndarray:  # type: ignore[type-arg]
    return np.frombuffer(payload, "<i2")


def _level_at(block: np.ndarray, rate: int, frequency: float) -> float:  # type: ignore[type-arg]
    """The spectrum's peak within 20 Hz of ``frequency``, relative to its median (dB)."""
    spectrum = np.abs(np.fft.rfft(block.astype(np.float64) * np.hanning(len(block))))
    bins = np.fft.rfftfreq(len(block), 1 / rate)
    near = spectrum[np.abs(bins - frequency) <= 20].max()
    return float(20 * np.log10(near / np.median(spectrum)))


def test_two_tracks_are_played_out_separately_and_mixed() -> None:
    tracks = FeedTracks(_receiver(), _receiver)
    feed = RtpFeed("l16", 8000)
    now = 0.0
    for n in range(100):  # 2 s of 440 Hz on track 0 and 880 Hz on track 1, out of order every fifth pair
        t = (np.arange(160) + n * 160) / 8000
        messages = [
            AudioReceived(name, n, n * 160, (np.sin(2 * np.pi * f * t) * 8000).astype("<i2").tobytes())
            for name, f in (("inbound", 440.0), ("outbound", 880.0))
        ]
        for message in messages[::-1] if n % 5 == 0 else messages:
            for packet in feed.packets_for(message):
                packet = packet[:1] + b"\x00" + packet[2:]  # payload type 0, as the receiver was built for
                tracks.datagram_received(packet, FEED, now)
        now += 0.02
    mixed = np.concatenate([tracks.mix.pull(160, 0.1 + i * 0.02) for i in range(100)])
    heard = {f: _level_at(mixed[800:], 8000, f) for f in (440.0, 660.0, 880.0)}
    assert min(heard[440.0], heard[880.0]) > 40 and heard[660.0] < min(heard[440.0], heard[880.0]) - 15, heard
    counters = tracks.counters()
    assert counters["ingestTracks"] == 2 and counters["packets"] == 200 and counters["lost"] == 0
    tracks.datagram_received(b"\x80\x00\x00\x01" + bytes(4) + b"\x00\x00\x00\x07" + bytes(160), FEED, now)
    assert tracks.counters()["foreignPackets"] == 1  # an SSRC that is not one of the feed's tracks


def test_twilio_signatures_agree_with_the_twilio_package() -> None:
    token = "12345678901234567890123456789012"
    validator = RequestValidator(token)
    url = "wss://bridge.example.com/ingest/webinar"
    assert twilio_signature_valid(token, url, validator.compute_signature(url, {}))
    assert twilio_signature_valid(
        token, "wss://bridge.example.com:443/ingest/webinar", validator.compute_signature(url, {})
    )
    form = {"CallSid": "CA1", "From": "+14155550100", "To": "+16505550100", "Digits": "1234"}
    http = "https://bridge.example.com/twiml/webinar?callId=x"
    assert twilio_signature_valid(token, http, validator.compute_signature(http, form), form.items())
    assert not twilio_signature_valid(
        token, http, validator.compute_signature(http, {**form, "To": "+1"}), form.items()
    )
    assert not twilio_signature_valid("another-token-another-token-0000", url, validator.compute_signature(url, {}))
    assert not twilio_signature_valid(token, url, "")
    assert token_valid("s" * 20, "s" * 20) and not token_valid("s" * 20, "") and not token_valid("s" * 20, "t" * 20)


def test_no_unauthenticated_route_can_be_configured() -> None:
    route = {"protocol": "acs", "rtmp_url": "rtmp://127.0.0.1/live", "stream": "{callId}"}
    with pytest.raises(ValidationError, match="at least 16 characters"):
        IngestRoute.model_validate({**route, "secret": "short"})
    with pytest.raises(ValidationError, match="secret"):
        IngestRoute.model_validate(route)
    with pytest.raises(ValidationError, match="rtmp_url"):
        IngestRoute.model_validate({**route, "secret": "x" * 16, "rtmp_url": "http://x/live"})
    with pytest.raises(ValidationError, match="route name"):
        IngestConfig.model_validate({"routes": {"a/b": {**route, "secret": "x" * 16}}})
    assert (
        IngestConfig.model_validate({"routes": {"web-1": {**route, "secret": "x" * 16}}}).routes["web-1"].protocol
        == "acs"
    )
