"""RTMP server messages (chunk reader, AMF0, onStatus through the client core) and WebSocket ingest
messages: anything a server or a sender sends becomes an error event or a close code, never an
exception, and the buffers stay bounded."""

from __future__ import annotations

import base64
import contextlib
import json

from hypothesis import given
from hypothesis import strategies as st

from bridge.rtmp import amf0
from bridge.rtmp.chunks import ChunkError, ChunkReader
from bridge.rtmp.client import HANDSHAKE_SIZE, RtmpClientCore, RtmpState
from bridge.rtmp.url import parse_target
from bridge.wsmedia.acs import AcsStream
from bridge.wsmedia.core import MAX_TRACKS
from bridge.wsmedia.events import Violation
from bridge.wsmedia.ringcentral import RingCentralStream
from bridge.wsmedia.twilio import TwilioStream
from tests.support import reference_rtmp as reference
from tests.support.fuzz_budget import FUZZ
from tests.support.mutate import mutated

TARGET = parse_target("rtmp://127.0.0.1:1935/live", "s")
RESULT = reference.write_message(
    3, 20, 0, 0, reference.amf0_encode("_result", 1.0, None, {"code": "NetConnection.Connect.Success"})
)
STATUS = reference.write_message(
    3, 20, 1, 0, reference.amf0_encode("onStatus", 0.0, None, {"level": "status", "code": "NetStream.Publish.Start"})
)
CLOSE_CODES = {1003, 1007, 1008, 1009}


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=300), mutated(RESULT), mutated(STATUS)), max_size=20))
def test_chunk_reader_raises_only_chunk_errors_and_stays_bounded(pieces: list[bytes]) -> None:
    reader = ChunkReader()
    for piece in pieces:
        try:
            reader.feed(piece)
            while reader.next_message() is not None:
                pass
        except ChunkError:
            return
    assert len(reader._buffer) <= sum(map(len, pieces))


@FUZZ
@given(st.one_of(st.binary(max_size=200), mutated(amf0.encode("onStatus", 0.0, None, {"code": "x", "n": [1.0]}))))
def test_amf0_raises_only_amf_errors(data: bytes) -> None:
    with contextlib.suppress(amf0.AmfError):
        amf0.decode_all(data)


@FUZZ
@given(st.lists(st.one_of(mutated(RESULT), mutated(STATUS), st.binary(max_size=200)), max_size=10))
def test_the_client_core_turns_any_server_into_publishing_or_a_failure(replies: list[bytes]) -> None:
    client = RtmpClientCore(TARGET, handshake_random=bytes(HANDSHAKE_SIZE - 8))
    client.data_to_send()
    client.receive_data(b"\x03" + bytes(HANDSHAKE_SIZE) * 2)
    for reply in replies:
        client.receive_data(reply)
        client.data_to_send()
    assert client.state in set(RtmpState)
    if client.state is RtmpState.FAILED:
        assert client.events  # a failure always says why


def _twilio(event: str, **fields: object) -> str:
    return json.dumps({"event": event, **fields})


START = _twilio(
    "start",
    start={"callSid": "CA1", "streamSid": "MZ1", "tracks": ["inbound"],
           "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
)  # fmt: skip
MEDIA = _twilio(
    "media",
    media={"track": "inbound", "chunk": "2", "timestamp": "20", "payload": base64.b64encode(b"\xff" * 160).decode()},
)
MESSAGES = st.one_of(
    st.text(max_size=200),
    st.sampled_from([START, MEDIA, _twilio("stop"), _twilio("dtmf", dtmf={"digit": "5"}), "{}", "[]", "null"]),
    mutated(MEDIA.encode()).map(lambda data: data.decode("utf-8", "replace")),
    st.builds(
        lambda track, ts: MEDIA.replace('"inbound"', json.dumps(track)).replace('"20"', json.dumps(ts)),
        st.text(max_size=5),
        st.one_of(st.integers(), st.text(max_size=3), st.none()),
    ),
)


@FUZZ
@given(st.sampled_from([TwilioStream, AcsStream, RingCentralStream]), st.lists(MESSAGES, max_size=30))
def test_ingest_cores_turn_any_message_into_events_or_a_close_code(core_type: type, messages: list[str]) -> None:
    core = core_type({}, {})
    for index, text in enumerate(messages):
        for event in core.receive_text(text, index * 0.02):
            if isinstance(event, Violation):
                assert event.code in CLOSE_CODES, event
    assert len(core.tracks) <= MAX_TRACKS
