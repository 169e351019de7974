"""AMF0, chunk framing and the publishing client core, judged by hand-checked byte vectors from the
RTMP 1.0 specification and by pyrtmp (an implementation we did not write), which also frames and
reads the scripted server's side."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.rtmp import amf0
from bridge.rtmp.chunks import ChunkError, ChunkReader, ChunkWriter, RtmpMessage
from bridge.rtmp.client import (
    HANDSHAKE_SIZE,
    PublishStarted,
    RtmpClientCore,
    RtmpFailed,
    RtmpState,
)
from bridge.rtmp.flv import AUDIO
from bridge.rtmp.url import RtmpUrlError, parse_target
from tests.support import reference_rtmp as reference
from tests.support.scripted_rtmp import ScriptedServer

TARGET = parse_target("rtmp://127.0.0.1:1935/live?token=abc", "call-1?key=k")


def test_amf0_known_bytes_and_pyrtmp_agree_both_ways() -> None:
    # AMF0 (Adobe AMF0 specification §2.2-2.7): string marker 2, u16 length; number marker 0, float64 BE
    assert amf0.encode("connect", 1.0) == b"\x02\x00\x07connect" + b"\x00" + struct.pack("!d", 1.0)
    assert amf0.encode(None, True) == b"\x05\x01\x01"
    assert amf0.encode({"a": 1.0}) == b"\x03\x00\x01a\x00" + struct.pack("!d", 1.0) + b"\x00\x00\x09"
    # pyrtmp reads flat objects only (it leaves a nested object's end marker unread): as in RTMP commands
    values = ["connect", 2.5, False, None, {"app": "live", "tcUrl": "rtmp://h/live", "fpad": False, "n": 7.0}]
    assert reference.amf0_decode(amf0.encode(*values)) == values
    assert amf0.decode_all(reference.amf0_encode(*values)) == values
    assert amf0.decode_all(amf0.encode({"n": {"x": 1.0}}, [1.0, "b"])) == [{"n": {"x": 1.0}}, [1.0, "b"]]


@pytest.mark.parametrize("data", [b"\x02\x00\x05ab", b"\x11", b"\x03\x00\x01k", b"\x03" * 40])
def test_amf0_rejects_malformed_data(data: bytes) -> None:
    with pytest.raises(amf0.AmfError):
        amf0.decode_all(data)


def test_chunk_bytes_match_the_specifications_layout() -> None:
    """RTMP 1.0 §5.3.1: basic header (fmt 2 bits, csid 6), type-0 message header (timestamp u24,
    length u24, type u8, stream id u32 little endian), then at most chunk-size bytes; the rest
    follows in type-3 chunks (basic header 0xC0 | csid). Hand-written vectors."""
    writer = ChunkWriter()
    writer.chunk_size = 4
    data = writer.write(4, RtmpMessage(8, 1, 40, b"abcdef"))
    assert data == bytes.fromhex("04 000028 000006 08 01000000") + b"abcd" + bytes.fromhex("c4") + b"ef"
    # §5.3.1.3: a timestamp of 0xFFFFFF or more is 0xFFFFFF in the header and an extended u32 after it,
    # repeated after every type-3 basic header of the same message (as FFmpeg and nginx-rtmp expect)
    data = writer.write(4, RtmpMessage(8, 1, 0x1000000, b"abcdef"))
    extended = bytes.fromhex("01000000")
    assert data == bytes.fromhex("04 ffffff 000006 08 01000000") + extended + b"abcd" + b"\xc4" + extended + b"ef"
    reader = ChunkReader()
    reader.chunk_size = 4
    reader.feed(data)
    assert reader.next_message() == RtmpMessage(8, 1, 0x1000000, b"abcdef")


def test_our_chunks_are_read_by_pyrtmp_and_pyrtmps_by_ours() -> None:
    writer = ChunkWriter()
    writer.chunk_size = 100
    messages = [RtmpMessage(8, 1, 40, b"a" * 250), RtmpMessage(8, 1, 60, b"b" * 30), RtmpMessage(9, 1, 60, b"v" * 99)]
    ours = writer.write(6, RtmpMessage(1, 0, 0, struct.pack("!I", 100)))  # Set Chunk Size, as the client sends
    ours += b"".join(writer.write(4, m) for m in messages)
    read = reference.read_messages(ours)
    assert [(type_id, stream, ts, payload) for _cs, type_id, stream, ts, payload in read[1:]] == [
        (m.type_id, m.stream_id, m.timestamp, m.payload) for m in messages
    ]
    theirs = b"".join(reference.write_message(5, m.type_id, m.stream_id, m.timestamp, m.payload) for m in messages)
    reader, received = ChunkReader(), []
    for i in range(0, len(theirs), 7):  # arbitrary TCP segmentation
        reader.feed(theirs[i : i + 7])
        while (message := reader.next_message()) is not None:
            received.append(message)
    assert received == messages


def test_reader_handles_compressed_headers_type_1_2_3() -> None:
    reader = ChunkReader()
    first = bytes([0x04]) + (1000).to_bytes(3, "big") + (3).to_bytes(3, "big") + b"\x08" + b"\x01\x00\x00\x00" + b"abc"
    type1 = bytes([0x44]) + (20).to_bytes(3, "big") + (2).to_bytes(3, "big") + b"\x08" + b"de"
    type2 = bytes([0x84]) + (30).to_bytes(3, "big") + b"fg"
    type3 = bytes([0xC4]) + b"hi"
    reader.feed(first + type1 + type2 + type3)
    stamps = []
    while (message := reader.next_message()) is not None:
        stamps.append((message.timestamp, message.payload))
    assert stamps == [(1000, b"abc"), (1020, b"de"), (1050, b"fg"), (1080, b"hi")]


def test_reader_rejects_stream_starting_without_full_header() -> None:
    reader = ChunkReader()
    reader.feed(bytes([0x83]) + b"\x00" * 7)  # type 2: no length, so it cannot start a chunk stream
    with pytest.raises(ChunkError):
        reader.next_message()


def connect_client() -> tuple[RtmpClientCore, ScriptedServer]:
    client = RtmpClientCore(TARGET, handshake_random=bytes(HANDSHAKE_SIZE - 8))
    server = ScriptedServer()
    client.receive_data(server.handshake(client.data_to_send()))
    return client, server


def test_handshake_then_connect_with_app_and_tcurl() -> None:
    client, server = connect_client()
    out = client.data_to_send()
    assert out[:HANDSHAKE_SIZE] == b"S" * HANDSHAKE_SIZE  # C2 echoes S1
    (connect,) = server.commands_from(out[HANDSHAKE_SIZE:])
    assert connect[0] == "connect" and connect[1] == 1.0
    assert isinstance(connect[2], dict)
    assert connect[2]["app"] == "live?token=abc" and connect[2]["tcUrl"] == "rtmp://127.0.0.1:1935/live?token=abc"
    assert client.state is RtmpState.CONNECTING


def test_full_publish_sequence_and_audio_after_publish_start() -> None:
    client, server = connect_client()
    server.commands_from(client.data_to_send()[HANDSHAKE_SIZE:])
    client.receive_data(server.command("_result", 1.0, None, {"code": "NetConnection.Connect.Success"}))
    names = [c[0] for c in server.commands_from(client.data_to_send())]
    assert names == ["releaseStream", "FCPublish", "createStream"]
    client.receive_data(server.command("_result", 4.0, None, 1.0))
    (publish,) = server.commands_from(client.data_to_send())
    assert publish[0] == "publish" and publish[3:] == ["call-1?key=k", "live"]
    client.send_media(AUDIO, 0, b"\xaf\x00\x12\x10")
    assert client.data_to_send() == b""  # nothing before Publish.Start
    started = {"level": "status", "code": "NetStream.Publish.Start"}
    client.receive_data(server.command("onStatus", 0.0, None, started, stream_id=1))
    assert client.events == [PublishStarted()] and client.state is RtmpState.PUBLISHING
    client.send_media(AUDIO, 20, b"\xae\x01abc")
    (audio,) = server.messages_from(client.data_to_send())
    assert audio[1:] == (8, 1, 20, b"\xae\x01abc")
    client.close()
    names = [c[0] for c in server.commands_from(client.data_to_send())]
    assert names == ["FCUnpublish", "deleteStream"] and client.state is RtmpState.CLOSED


def test_publish_rejection_and_connect_error_become_failures() -> None:
    client, server = connect_client()
    client.data_to_send()
    rejected = {"code": "NetConnection.Connect.Rejected", "description": "bad app"}
    client.receive_data(server.command("_error", 1.0, None, rejected))
    assert client.events == [RtmpFailed("NetConnection.Connect.Rejected", "bad app")]
    assert client.state is RtmpState.FAILED


def test_ping_is_answered_and_window_acknowledged() -> None:
    client, server = connect_client()
    client.data_to_send()
    window = reference.write_message(2, 5, 0, 0, struct.pack("!I", 100))  # Window Acknowledgement Size
    ping = reference.write_message(2, 4, 0, 0, struct.pack("!HI", 6, 1234))  # User Control: PingRequest
    client.receive_data(window + ping + b"")
    replies = [
        (type_id, payload) for _cs, type_id, _stream, _ts, payload in server.messages_from(client.data_to_send())
    ]
    assert (4, struct.pack("!HI", 7, 1234)) in replies  # PingResponse with the same timestamp
    assert any(type_id == 3 for type_id, _ in replies)  # acknowledgement of the window


def test_garbage_from_server_fails_cleanly() -> None:
    client, _ = connect_client()
    client.receive_data(b"\xb2" + b"\x00" * 20)  # a type-2 header on a chunk stream never opened
    assert client.state is RtmpState.FAILED and isinstance(client.events[0], RtmpFailed)


def test_target_parsing_and_token_free_public_url() -> None:
    target = parse_target("rtmps://cdn.example.com/live/_definst_?t=secret", "s1?k=secret2")
    assert (target.port, target.app, target.tls) == (443, "live/_definst_?t=secret", True)
    assert "secret" not in target.display()
    for url, stream in [("http://x/live", "s"), ("rtmp:///live", "s"), ("rtmp://h", "s"), ("rtmp://h/live", "")]:
        with pytest.raises(RtmpUrlError):
            parse_target(url, stream)


def test_a_chunk_stream_may_start_with_a_type_1_header_but_not_type_2() -> None:
    """Some servers (pyrtmp, FFmpeg's listener) open a chunk stream with a type-1 header."""
    reader = ChunkReader()
    # fmt 1, csid 3: timestamp delta 5, length 3, type 20 (command), then the payload
    reader.feed(bytes([0x43, 0, 0, 5, 0, 0, 3, 20]) + b"abc")
    assert reader.next_message() == RtmpMessage(20, 0, 5, b"abc")
    strict = ChunkReader()
    strict.feed(bytes([0x84, 0, 0, 5]) + b"abc")  # fmt 2, csid 4: no length, cannot start a stream
    with pytest.raises(ChunkError):
        strict.next_message()


def test_the_client_asks_for_acknowledgements_and_reads_them() -> None:
    """Section 5.4.4: our Window Acknowledgement Size after the handshake; the server's Acknowledgement
    (type 3, a sequence number of bytes it read) tells how much of what we sent it has read."""
    client = RtmpClientCore(TARGET, handshake_random=bytes(HANDSHAKE_SIZE - 8), ack_window=4096)
    server = ScriptedServer()
    client.receive_data(server.handshake(client.data_to_send()))
    messages = server.messages_from(client.data_to_send()[HANDSHAKE_SIZE:])
    assert (5, struct.pack("!I", 4096)) in [(type_id, payload) for _cs, type_id, _st, _ts, payload in messages]
    assert client.unacknowledged is None
    client.receive_data(reference.write_message(2, 3, 0, 0, struct.pack("!I", 100)))
    assert client.unacknowledged == client.bytes_sent - (1 + 2 * HANDSHAKE_SIZE) - 100  # the handshake is not counted


@settings(max_examples=300, deadline=None)
@given(
    csid=st.integers(2, 400),
    type_id=st.sampled_from([8, 9]),
    stream_id=st.integers(0, 0xFFFFFFFF),
    timestamp=st.sampled_from([0, 1, 0xFFFFFE, 0xFFFFFF, 0x1000000, 0xFFFFFFFF]) | st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=300),
    chunk_size=st.sampled_from([128, 256, 4096]),
)
def test_the_single_chunk_fast_path_gives_the_general_writers_bytes(
    csid: int, type_id: int, stream_id: int, timestamp: int, payload: bytes, chunk_size: int
) -> None:
    """ChunkWriter.single (the publish fast path) is write() byte for byte where it applies, and
    declines (None) where the message needs an extended timestamp, a longer basic header or chunks."""
    writer = ChunkWriter()
    writer.chunk_size = chunk_size
    fast = writer.single(csid, type_id, stream_id, timestamp, payload)
    general = writer.write(csid, RtmpMessage(type_id, stream_id, timestamp, payload))
    applies = csid < 64 and timestamp < 0xFFFFFF and len(payload) <= chunk_size
    assert fast == (general if applies else None)
    if applies:
        (message,) = ScriptedServer().messages_from(fast)  # pyrtmp's framing reads it back
        assert message[1:] == (type_id, stream_id, timestamp, payload)


def test_the_publish_fast_path_counts_and_sends_what_send_media_would() -> None:
    client, server = connect_client()
    server.commands_from(client.data_to_send()[HANDSHAKE_SIZE:])
    assert client.media_bytes(AUDIO, 0, b"\xaf\x01x") is None  # not publishing yet
    client.receive_data(server.command("_result", 1.0, None, {"code": "NetConnection.Connect.Success"}))
    server.commands_from(client.data_to_send())
    client.receive_data(server.command("_result", 4.0, None, 1.0))
    server.commands_from(client.data_to_send())
    started = {"level": "status", "code": "NetStream.Publish.Start"}
    client.receive_data(server.command("onStatus", 0.0, None, started, stream_id=1))
    client.data_to_send()
    before = client.bytes_sent
    client.send_media(AUDIO, 64, b"\xae\x01abc")
    general = client.data_to_send()
    assert client.media_bytes(AUDIO, 64, b"\xae\x01abc") == general
    assert client.bytes_sent == before + 2 * len(general)
    client.send_media(AUDIO, 128, b"\xae\x01def")  # something waiting: the general path keeps the order
    assert client.media_bytes(AUDIO, 192, b"\xae\x01ghi") is None
