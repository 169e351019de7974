"""AMF0, chunk framing and the publishing client core, against a scripted server."""

from __future__ import annotations

import struct

import pytest

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

TARGET = parse_target("rtmp://127.0.0.1:1935/live?token=abc", "call-1?key=k")


def test_amf0_round_trip_and_known_bytes() -> None:
    assert amf0.encode("connect", 1.0) == b"\x02\x00\x07connect" + b"\x00" + struct.pack("!d", 1.0)
    assert amf0.encode(None, True) == b"\x05\x01\x01"
    values = ["a", 2.5, False, None, {"k": "v", "n": {"x": 1.0}}, [1.0, "b"]]
    assert amf0.decode_all(amf0.encode(*values)) == values


@pytest.mark.parametrize("data", [b"\x02\x00\x05ab", b"\x11", b"\x03\x00\x01k", b"\x03" * 40])
def test_amf0_rejects_malformed_data(data: bytes) -> None:
    with pytest.raises(amf0.AmfError):
        amf0.decode_all(data)


def test_chunks_round_trip_with_small_chunk_size_and_extended_timestamp() -> None:
    writer, reader = ChunkWriter(), ChunkReader()
    writer.chunk_size = reader.chunk_size = 100
    messages = [RtmpMessage(8, 1, 40, b"a" * 250), RtmpMessage(8, 1, 0x1000000, b"b" * 130)]
    data = b"".join(writer.write(4, m) for m in messages)
    received = []
    for i in range(0, len(data), 7):  # arbitrary TCP segmentation
        reader.feed(data[i : i + 7])
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


class ScriptedServer:
    """Plays the server side of RTMP with our own chunk framing."""

    def __init__(self) -> None:
        self.writer = ChunkWriter()
        self.reader = ChunkReader()
        self.handshake_done = False

    def handshake(self, client_bytes: bytes) -> bytes:
        assert client_bytes[0] == 3 and len(client_bytes) == 1 + HANDSHAKE_SIZE
        return b"\x03" + b"S" * HANDSHAKE_SIZE + client_bytes[1:]

    def command(self, *values: amf0.AmfValue, stream_id: int = 0) -> bytes:
        return self.writer.write(3, RtmpMessage(20, stream_id, 0, amf0.encode(*values)))

    def commands_from(self, data: bytes) -> list[list[amf0.AmfValue]]:
        self.reader.feed(data)
        out = []
        while (message := self.reader.next_message()) is not None:
            if message.type_id == 1:
                self.reader.chunk_size = struct.unpack("!I", message.payload)[0]
            if message.type_id == 20:
                out.append(amf0.decode_all(message.payload))
        return out


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
    server.reader.feed(client.data_to_send())
    audio = server.reader.next_message()
    assert audio == RtmpMessage(8, 1, 20, b"\xae\x01abc")
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
    window = server.writer.write(2, RtmpMessage(5, 0, 0, struct.pack("!I", 100)))
    ping = server.writer.write(2, RtmpMessage(4, 0, 0, struct.pack("!HI", 6, 1234)))
    client.receive_data(window + ping + b"")
    server_view = ChunkReader()
    server_view.chunk_size = 4096
    server_view.feed(client.data_to_send())
    replies = []
    while (message := server_view.next_message()) is not None:
        replies.append(message)
    assert RtmpMessage(4, 0, 0, struct.pack("!HI", 7, 1234)) in replies
    assert any(m.type_id == 3 for m in replies)  # acknowledgement of the window


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
