"""A media stream over its WebSocket: frames built by hand from RFC 6455, a fake clock, and the
handover between processes at any read boundary giving what one process would have seen."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.wsmedia.acs import AcsStream
from bridge.wsmedia.events import DigitReceived, StreamStarted
from bridge.wsmedia.ringcentral import RingCentralStream
from bridge.wsmedia.stream import MediaStream, StreamAudio, StreamEnded, TrackAppeared
from bridge.wsmedia.twilio import TwilioStream
from tests.support.platform_messages import PCM_20MS_16K, TWILIO_START, ULAW_20MS, twilio_media
from tests.support.websocket_frames import client_frame

OP_TEXT, OP_CLOSE, OP_PING = 0x1, 0x8, 0x9


def text(message: Any) -> bytes:
    return client_frame(OP_TEXT, (message if isinstance(message, str) else json.dumps(message)).encode())


def close_frame(code: int, reason: bytes = b"") -> bytes:
    """A server's close frame (unmasked, RFC 6455 5.5.1), built by hand."""
    payload = code.to_bytes(2, "big") + reason
    return bytes((0x80 | OP_CLOSE, len(payload))) + payload


def started_stream() -> MediaStream:
    stream = MediaStream(TwilioStream({}, {}))
    (started,) = stream.receive_data(text(TWILIO_START), 0.0)
    assert isinstance(started, StreamStarted)
    return stream


def test_tracks_are_numbered_as_they_appear_and_each_announced_once() -> None:
    stream = started_stream()
    data = text(twilio_media(0, 0)) + text(twilio_media(0, 0, "outbound")) + text(twilio_media(1, 20))
    events = stream.receive_data(data, 0.1)
    assert events[0] == TrackAppeared(0, "inbound")
    assert (events[1].track, events[1].timestamp) == (0, 0)  # type: ignore[union-attr]
    assert events[2] == TrackAppeared(1, "outbound")
    assert [(e.track, e.timestamp) for e in events[3:]] == [(1, 0), (0, 160)]  # type: ignore[union-attr]
    assert all(isinstance(e, StreamAudio) and e.payload == b"\xff" * 160 for e in events[3:])
    digit = {"event": "dtmf", "streamSid": "MZ", "dtmf": {"track": "inbound_track", "digit": "7"}}
    assert stream.receive_data(text(digit), 0.2) == [DigitReceived("7", "inbound_track")]


def test_a_stop_message_finishes_with_1000_and_our_close_frame() -> None:
    stream = started_stream()
    (ended,) = stream.receive_data(text({"event": "stop", "streamSid": "MZ"}), 1.0)
    assert ended == StreamEnded(1000, "the stream was stopped (Twilio stop message)", True)
    assert stream.data_to_send() == close_frame(1000, b"the stream was stopped (Twilio stop message)")
    assert not stream.peer_gone
    assert stream.receive_data(text(twilio_media(5, 100)) + client_frame(OP_CLOSE, b"\x03\xe8"), 1.1) == []
    assert stream.peer_gone and stream.data_to_send() == b""  # its close answered ours: nothing more to say


def test_the_senders_close_is_echoed_and_decides_the_end() -> None:
    clean, torn = started_stream(), started_stream()
    (ended,) = clean.receive_data(client_frame(OP_CLOSE, (1001).to_bytes(2, "big") + b"bye"), 1.0)
    assert ended == StreamEnded(1001, "the sender closed the connection (1001) without a stop message", True)
    assert clean.peer_gone and clean.data_to_send() == close_frame(1001)  # RFC 6455 5.5.1: the code echoed
    (ended,) = torn.receive_data(client_frame(OP_CLOSE, (4000).to_bytes(2, "big")), 1.0)
    assert ended == StreamEnded(4000, "the connection was torn down (4000) without a stop message", False)


def test_a_torn_connection_and_broken_input_fail_and_only_the_first_end_counts() -> None:
    torn = started_stream()
    assert torn.receive_eof() == [
        StreamEnded(1006, "the connection was torn down (1006) without a stop message", False)
    ]
    assert torn.data_to_send() == b"" and torn.close(1000, "late") == []
    broken = started_stream()
    (ended,) = broken.receive_data(text("{not json") + text(twilio_media(0, 0)), 0.5)
    assert ended == StreamEnded(1007, "protocol error (1007): the message is not valid JSON", False)
    assert broken.data_to_send() == close_frame(1007, b"protocol error (1007): the message is not valid JSON")
    unmasked = started_stream()
    (ended,) = unmasked.receive_data(bytes((0x81, 0x02)) + b"hi", 0.5)
    assert ended.code == 1002 and not ended.finished  # type: ignore[union-attr]


def test_a_sender_that_does_not_read_is_given_up_without_a_handshake() -> None:
    stream = started_stream()
    stream.receive_data(client_frame(OP_PING, b"p"), 0.1)
    (ended,) = stream.abandon(1008, "the sender does not read what we send")
    assert ended == StreamEnded(1008, "the sender does not read what we send", False) and stream.peer_gone


def test_no_handover_before_the_start_inside_a_fragmented_message_or_with_pongs_to_send() -> None:
    fresh = MediaStream(TwilioStream({}, {}))
    assert fresh.handover() is None  # not started
    stream = started_stream()
    stream.receive_data(client_frame(OP_TEXT, b'{"event":', fin=False), 0.1)
    assert stream.handover() is None
    stream.receive_data(client_frame(0x0, b'"connected"}'), 0.1)
    stream.receive_data(client_frame(OP_PING, b"p"), 0.1)
    assert stream.handover() is None  # the pong is still ours to write
    stream.data_to_send()
    half = text(twilio_media(0, 0))
    stream.receive_data(half[:7], 0.2)
    handover = stream.handover()
    assert handover is not None and handover.unparsed == half[:7] and handover.protocol == "twilio"


def events_of(stream: MediaStream, chunks: list[bytes]) -> list[Any]:
    return [event for chunk in chunks for event in stream.receive_data(chunk, 0.0)]


TWILIO_WIRE = b"".join(
    [text(TWILIO_START)]
    + [text(twilio_media(n, n * 20, "inbound" if n % 3 else "outbound")) for n in range(12)]
    + [client_frame(OP_TEXT, b'{"event":"mark",', fin=False), client_frame(0x0, b'"mark":{"name":"m"}}')]
    + [client_frame(OP_PING, b"x"), text({"event": "stop"})]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(TWILIO_WIRE) - 1), max_size=8, unique=True))
def test_handing_over_at_any_read_boundary_gives_what_one_process_would_see(cuts: list[int]) -> None:
    """The first process reads up to a boundary where it may hand over, the second one goes on:
    the events of both, in order, are those of one stream that read everything."""
    bounds = [0, *sorted(cuts), len(TWILIO_WIRE)]
    chunks = [TWILIO_WIRE[a:b] for a, b in itertools.pairwise(bounds)]
    whole = events_of(MediaStream(TwilioStream({}, {})), chunks)
    first = MediaStream(TwilioStream({}, {}))
    seen: list[Any] = []
    for index, chunk in enumerate(chunks):
        seen += first.receive_data(chunk, 0.0)
        first.data_to_send()
        handover = first.handover()
        if handover is not None:
            seen += events_of(MediaStream.adopted(handover), chunks[index + 1 :])
            break
    else:  # no read ended between the start and the stop: there was never a moment to hand over
        assert first.ended is not None
    assert seen == whole


def test_acs_time_origin_and_rate_carry_over() -> None:
    stream = MediaStream(AcsStream({}, {}))
    metadata = {"subscriptionId": "sub", "encoding": "PCM", "sampleRate": 16000, "channels": 1}
    data = {"timestamp": "2024-05-01T12:00:00.000Z", "data": PCM_20MS_16K}
    stream.receive_data(text({"kind": "AudioMetadata", "audioMetadata": metadata}), 0.0)
    stream.receive_data(text({"kind": "AudioData", "audioData": data}), 0.0)
    handover = stream.handover()
    assert handover is not None
    adopted = MediaStream.adopted(handover)
    later = {**data, "timestamp": "2024-05-01T12:00:00.060Z"}
    (audio,) = adopted.receive_data(text({"kind": "AudioData", "audioData": later}), 0.1)
    assert isinstance(audio, StreamAudio) and (audio.track, audio.timestamp) == (0, 960)  # 60 ms at 16 kHz


def test_ringcentral_stopped_perspectives_carry_over() -> None:
    stream = MediaStream(RingCentralStream({}, {}))
    start = {"event": "Start", "metadata": {"callId": "c1", "contentType": "audio/x-mulaw", "sampleRateHertz": 8000}}
    media = {"event": "Media", "perspective": "Participant", "sequenceId": 1, "media": ULAW_20MS}
    stream.receive_data(text(start) + text({"event": "Stop", "perspective": "Participant"}), 0.0)
    handover = stream.handover()
    assert handover is not None
    adopted = MediaStream.adopted(handover)
    assert adopted.receive_data(text(media), 0.1) == []  # that perspective stopped before the handover
    (ended,) = adopted.receive_data(text({"event": "Stop", "perspective": "Conference"}), 0.2)
    assert isinstance(ended, StreamEnded) and ended.finished and ended.code == 1000
