"""The WebSocket media protocol cores on the platforms' documented messages, with a fake clock."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bridge.wsmedia.acs import AcsStream
from bridge.wsmedia.core import MESSAGE_BURST, StreamCore
from bridge.wsmedia.events import (
    AudioReceived,
    DigitReceived,
    MarkReceived,
    StreamStarted,
    StreamStopped,
    TrackStopped,
    Violation,
)
from bridge.wsmedia.ringcentral import RingCentralStream
from bridge.wsmedia.twilio import TwilioStream
from tests.support.platform_messages import PCM_20MS_16K, TWILIO_START, ULAW_20MS, twilio_media


def feed(core: StreamCore, *messages: Any, now: float = 0.0) -> list[Any]:
    events: list[Any] = []
    for message in messages:
        events += core.receive_text(message if isinstance(message, str) else json.dumps(message), now)
    return events


def started_twilio() -> TwilioStream:
    core = TwilioStream({"room": "7"}, {})
    feed(core, {"event": "connected", "protocol": "Call", "version": "1.0.0"}, TWILIO_START)
    return core


def test_twilio_documented_sequence() -> None:
    core = TwilioStream({"room": "7"}, {})
    events = feed(core, {"event": "connected", "protocol": "Call", "version": "1.0.0"}, TWILIO_START)
    assert len(events) == 1 and isinstance(events[0], StreamStarted)
    started = events[0]
    assert started.platform_id == "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
    assert started.tracks == ("inbound", "outbound") and (started.encoding, started.rate) == ("pcmu", 8000)
    assert started.parameters["FirstName"] == "Jane" and started.parameters["room"] == "7"
    assert started.parameters["callId"] == "webinar-42" and started.parameters["streamSid"].startswith("MZ")
    (audio,) = feed(core, twilio_media(3, 40, "outbound"))
    assert audio == AudioReceived("outbound", 3, 320, b"\xff" * 160)  # 40 ms at 8 kHz
    dtmf = {"event": "dtmf", "streamSid": "MZ", "sequenceNumber": "5", "dtmf": {"track": "inbound_track", "digit": "1"}}
    assert feed(core, dtmf) == [DigitReceived("1", "inbound_track")]
    assert feed(core, {"event": "mark", "sequenceNumber": "4", "streamSid": "MZ", "mark": {"name": "my label"}}) == [
        MarkReceived("my label")
    ]
    stop = {"event": "stop", "sequenceNumber": "5", "streamSid": "MZ", "stop": {"accountSid": "AC", "callSid": "CA"}}
    assert isinstance(feed(core, stop)[0], StreamStopped)
    assert feed(core, twilio_media(4, 60)) == []  # nothing after stop


@pytest.mark.parametrize(
    ("message", "code", "words"),
    [
        ("{not json", 1007, "not valid JSON"),
        ("[1, 2]", 1007, "JSON object"),
        (json.dumps({"event": "hangup"}), 1008, "unknown event"),
        (twilio_media(1, 0, payload="@@@not base64@@@"), 1007, "base64"),
        (twilio_media(1, 0, payload=base64.b64encode(b"\xff" * 8001).decode()), 1007, "more than 200 ms"),
        (twilio_media(1, 0, payload=""), 1007, "whole"),
        (
            json.dumps({"event": "media", "media": {"chunk": "x", "timestamp": "0", "payload": ULAW_20MS}}),
            1007,
            "chunk",
        ),
        (json.dumps(TWILIO_START), 1008, "second start"),
        (json.dumps({"event": "dtmf", "dtmf": {"digit": "12"}}), 1008, "DTMF digit"),
    ],
)
def test_twilio_bad_input_becomes_a_close_code(message: str, code: int, words: str) -> None:
    (violation,) = started_twilio().receive_text(message, 0.0)
    assert isinstance(violation, Violation) and violation.code == code and words in violation.reason


def test_media_before_start_and_a_wrong_format_are_refused() -> None:
    (early,) = TwilioStream({}, {}).receive_text(twilio_media(1, 0), 0.0)
    assert isinstance(early, Violation) and early.code == 1008 and "before" in early.reason
    linear = json.loads(json.dumps(TWILIO_START))
    linear["start"]["mediaFormat"]["encoding"] = "audio/x-l16"
    (refused,) = feed(TwilioStream({}, {}), linear)
    assert isinstance(refused, Violation) and refused.code == 1003
    assert TwilioStream({}, {}).receive_binary()[0] == Violation(
        1003, "twilio media streams send text frames, not binary"
    )


def test_flood_is_a_policy_violation_on_a_fake_clock() -> None:
    core = started_twilio()
    events = [core.receive_text(twilio_media(n, n * 20), 1.0) for n in range(MESSAGE_BURST + 5)]
    assert all(isinstance(e[0], AudioReceived) for e in events[: MESSAGE_BURST - 1])
    assert isinstance(events[-1][0], Violation) and events[-1][0].code == 1008
    paced = started_twilio()
    assert all(isinstance(paced.receive_text(twilio_media(n, n * 20), n * 0.02)[0], AudioReceived) for n in range(3000))


def test_acs_mixed_16k_and_unmixed_24k_participants() -> None:
    core = AcsStream({}, {"X-MS-Call-Connection-Id": "conn-1", "x-ms-call-correlation-id": "corr-9"})
    metadata = {"subscriptionId": "sub", "encoding": "PCM", "sampleRate": 16000, "channels": 1, "length": 640}
    (started,) = feed(core, {"kind": "AudioMetadata", "audioMetadata": metadata})
    assert isinstance(started, StreamStarted) and started.platform_id == "conn-1" and started.encoding == "l16"
    assert started.parameters["correlationId"] == "corr-9"
    data = {"timestamp": "2024-05-01T12:00:00.000Z", "data": PCM_20MS_16K, "silent": False}
    later = {**data, "timestamp": "2024-05-01T12:00:00.060Z"}
    first, third = feed(core, {"kind": "AudioData", "audioData": data}, {"kind": "AudioData", "audioData": later})
    assert (first.track, first.sequence, first.timestamp) == ("mixed", 0, 0)
    assert (third.sequence, third.timestamp) == (3, 960)  # 60 ms at 16 kHz, the third 20 ms frame after
    dtmf = {"kind": "DtmfData", "dtmfData": {"data": "5", "timestamp": "2024-05-01T12:00:01Z", "participantRawID": "p"}}
    assert feed(core, dtmf) == [DigitReceived("5", "p")]
    wide = AcsStream({}, {})
    feed(wide, {"kind": "AudioMetadata", "audioMetadata": {**metadata, "sampleRate": 24000, "length": 960}})
    pcm24 = base64.b64encode(bytes(960)).decode()
    tracks = [
        feed(wide, {"kind": "AudioData", "audioData": {**data, "data": pcm24, "participantRawID": f"8:acs:{i}"}})
        for i in range(6)
    ]
    assert [t[0].track for t in tracks if t] == [f"8:acs:{i}" for i in range(4)]  # four participants at most
    assert wide.ignored_tracks == 2


@pytest.mark.parametrize(
    ("audio_data", "code"),
    [
        ({"timestamp": "yesterday", "data": PCM_20MS_16K}, 1007),
        ({"timestamp": "2024-05-01T12:00:00", "data": PCM_20MS_16K}, 1007),  # no time zone
        ({"timestamp": "2024-05-01T12:00:00Z", "data": base64.b64encode(b"\x00" * 641).decode()}, 1007),
    ],
)
def test_acs_bad_audio(audio_data: dict[str, Any], code: int) -> None:
    core = AcsStream({}, {})
    feed(core, {"kind": "AudioMetadata", "audioMetadata": {"encoding": "PCM", "sampleRate": 16000}})
    (violation,) = feed(core, {"kind": "AudioData", "audioData": audio_data})
    assert isinstance(violation, Violation) and violation.code == code


def test_ringcentral_perspectives_and_one_stop_each() -> None:
    core = RingCentralStream({"agentId": "from-query"}, {})
    metadata = {"callId": "c1", "sessionId": "s9", "ani": "+1415", "dnis": "+1650", "accountId": "a", "agentId": "7"}
    connected = {"event": "Connected", "protocol": "AgentSession", "version": "1.0.0"}
    start = {"event": "Start", "metadata": {**metadata, "contentType": "audio/x-mulaw", "sampleRateHertz": 8000}}
    (started,) = feed(core, connected, start)
    assert (
        isinstance(started, StreamStarted) and started.platform_id == "c1-s9" and started.parameters["agentId"] == "7"
    )
    media = {"event": "Media", "perspective": "Conference", "sequenceId": 5, "media": ULAW_20MS}
    (audio,) = feed(core, media)
    assert (audio.track, audio.sequence, audio.timestamp) == ("Conference", 5, 800)
    assert feed(core, {"event": "Stop", "perspective": "Participant"}) == [TrackStopped("Participant")]
    assert feed(core, {**media, "perspective": "Participant"}) == []  # that perspective has stopped
    last = feed(core, {"event": "Stop", "perspective": "Conference"})
    assert last[0] == TrackStopped("Conference") and isinstance(last[1], StreamStopped)
    (bad,) = feed(RingCentralStream({}, {}), connected, {"event": "Start", "metadata": {"sessionId": "s"}})
    assert isinstance(bad, Violation) and "callId" in bad.reason


def test_no_input_makes_a_core_raise() -> None:
    """Every shape of garbage comes back as events, never as an exception."""
    samples = [
        "",
        "null",
        "1",
        '"x"',
        "{}",
        '{"event": 5}',
        '{"event": "media"}',
        '{"event": "media", "media": []}',
        '{"event": "start", "start": {"mediaFormat": {"sampleRate": "-1"}}}',
        "[" * 100000,
        '{"kind": null}',
    ]
    for core in (TwilioStream({}, {}), AcsStream({}, {}), RingCentralStream({}, {})):
        for text in samples:
            for event in core.receive_text(text, 0.0):
                assert isinstance(event, Violation)
