"""The WebSocket server core against RFC 6455's own examples and hand-built frames."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.wsmedia.websocket import (
    BinaryReceived,
    CloseReceived,
    ConnectionFailed,
    HandshakeError,
    ServerConnection,
    TextReceived,
    accept_key,
    frame,
)
from tests.support.websocket_frames import RFC_MASK, client_frame

MASK = RFC_MASK
HELLO_MASKED = bytes((0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58))  # RFC 6455 5.7


def test_the_handshake_answers_rfc_6455s_example_key() -> None:
    headers = {
        "Upgrade": "websocket",
        "Connection": "keep-alive, Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    assert accept_key(headers) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"Upgrade": "h2c"}, 400, "Upgrade"),
        ({"Connection": "keep-alive"}, 400, "Connection"),
        ({"Sec-WebSocket-Version": "8"}, 426, "13"),
        ({"Sec-WebSocket-Key": "c2hvcnQ="}, 400, "16 bytes"),
        ({"Sec-WebSocket-Key": "not base64!!"}, 400, "16 bytes"),
    ],
)
def test_a_request_that_is_not_an_opening_handshake_is_refused(change: dict[str, str], status: int, words: str) -> None:
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        **change,
    }
    with pytest.raises(HandshakeError) as refused:
        accept_key(headers)
    assert refused.value.status == status and words in str(refused.value)


def test_rfc_6455s_masked_hello_whole_and_byte_by_byte() -> None:
    assert ServerConnection(1000).receive_data(HELLO_MASKED) == [TextReceived("Hello")]
    connection = ServerConnection(1000)
    events = [event for byte in HELLO_MASKED for event in connection.receive_data(bytes((byte,)))]
    assert events == [TextReceived("Hello")]
    assert client_frame(0x1, b"Hello") == HELLO_MASKED  # the test's own builder agrees with the RFC


def test_a_fragmented_message_with_a_ping_between_its_fragments() -> None:
    connection = ServerConnection(1000)
    data = client_frame(0x1, b"Hel", fin=False) + client_frame(0x9, b"Hello") + client_frame(0x0, b"lo")
    assert connection.receive_data(data) == [TextReceived("Hello")]
    assert connection.data_to_send() == bytes((0x8A, 0x05)) + b"Hello"  # RFC 6455 5.7's pong, unmasked
    assert connection.data_to_send() == b""


def test_a_character_split_across_fragments_is_valid_utf8() -> None:
    euro = "€".encode()
    data = client_frame(0x1, euro[:1], fin=False) + client_frame(0x0, euro[1:])
    assert ServerConnection(1000).receive_data(data) == [TextReceived("€")]


def test_several_messages_in_one_read_and_a_frame_across_reads() -> None:
    connection = ServerConnection(100_000)
    big = bytes(range(256)) * 300  # 76,800 bytes: the 64-bit length form
    data = client_frame(0x2, b"\x01\x02") + client_frame(0x1, b"x" * 200) + client_frame(0x2, big)
    first = connection.receive_data(data[:-1000])
    assert first == [BinaryReceived(b"\x01\x02"), TextReceived("x" * 200)]
    assert connection.receive_data(data[-1000:]) == [BinaryReceived(big)]


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (bytes((0x81, 0x05)) + b"Hello", 1002, "masked"),  # RFC 6455 5.7's unmasked frame, from a client
        (client_frame(0x1, b"x", rsv=0x40), 1002, "reserved bit"),
        (client_frame(0x3, b"x"), 1002, "opcode"),
        (client_frame(0xB, b"x"), 1002, "opcode"),
        (client_frame(0x9, b"x" * 126), 1002, "control frame"),
        (client_frame(0x9, b"x", fin=False), 1002, "control frame"),
        (client_frame(0x0, b"x"), 1002, "continuation"),
        (client_frame(0x1, b"a", fin=False) + client_frame(0x1, b"b"), 1002, "new message"),
        (client_frame(0x1, b"\xff\xfe"), 1007, "UTF-8"),
        (client_frame(0x8, b"\x03"), 1002, "close frame"),
        (client_frame(0x8, (1005).to_bytes(2, "big")), 1002, "close frame"),
        (client_frame(0x8, (1000).to_bytes(2, "big") + b"\xff"), 1007, "reason"),
    ],
)
def test_a_broken_frame_fails_the_connection_with_its_code(data: bytes, code: int, words: str) -> None:
    connection = ServerConnection(1000)
    events = connection.receive_data(data)
    assert len(events) == 1 and isinstance(events[0], ConnectionFailed), events
    assert events[0].code == code and words in events[0].reason
    assert connection.receive_data(HELLO_MASKED) == []  # nothing more is read


def test_a_message_over_the_limit_fails_on_its_header_alone() -> None:
    connection = ServerConnection(1000)
    header = struct.pack("!BBQ", 0x82, 0x80 | 127, 10_000_000)
    assert connection.receive_data(header) == [ConnectionFailed(1009, "a message of more than 1000 bytes")]
    fragmented = ServerConnection(1000)
    data = client_frame(0x2, b"x" * 600, fin=False) + client_frame(0x0, b"x" * 401)
    assert fragmented.receive_data(data) == [ConnectionFailed(1009, "a message of more than 1000 bytes")]


def test_the_clients_close_is_answered_with_its_code() -> None:
    connection = ServerConnection(1000)
    events = connection.receive_data(client_frame(0x8, (1001).to_bytes(2, "big") + b"bye") + HELLO_MASKED)
    assert events == [CloseReceived(1001, "bye")]
    assert connection.data_to_send() == bytes((0x88, 0x02, 0x03, 0xE9))
    silent = ServerConnection(1000)
    assert silent.receive_data(client_frame(0x8, b"")) == [CloseReceived(1005, "")]
    assert silent.data_to_send() == bytes((0x88, 0x00))


def test_our_close_is_sent_once_with_a_reason_cut_on_a_character() -> None:
    connection = ServerConnection(1000)
    connection.close(1008, "é" * 100)
    connection.close(1000, "again")
    data = connection.data_to_send()
    assert data[:4] == bytes((0x88, 124, 0x03, 0xF0))  # 2 + 122 bytes: 61 whole characters
    assert data[4:].decode() == "é" * 61
    torn = ServerConnection(1000)
    torn.close(1006, "torn down")  # 1006 must never be sent (RFC 6455 7.4.1)
    assert torn.data_to_send() == bytes((0x88, 0x00))


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (125, bytes((0x82, 125))),
        (126, bytes((0x82, 126, 0x00, 126))),
        (256, bytes((0x82, 0x7E, 0x01, 0x00))),  # RFC 6455 5.7's 256-byte binary frame
        (65535, bytes((0x82, 126, 0xFF, 0xFF))),
        (65536, bytes((0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0))),  # RFC 6455 5.7's 64 KiB frame
    ],
)
def test_server_frames_use_the_shortest_length(size: int, header: bytes) -> None:
    assert frame(0x2, b"\x00" * size) == header + b"\x00" * size


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300)), min_size=1, max_size=8),
    fragment=st.integers(min_value=1, max_value=400),
    cut=st.integers(min_value=1, max_value=500),
    mask=st.binary(min_size=4, max_size=4),
)
def test_any_fragmentation_and_any_reads_give_the_same_messages(
    messages: list[str | bytes], fragment: int, cut: int, mask: bytes
) -> None:
    stream = b""
    for message in messages:
        payload, opcode = (message.encode(), 0x1) if isinstance(message, str) else (message, 0x2)
        pieces = [payload[start : start + fragment] for start in range(0, len(payload), fragment)] or [b""]
        for index, piece in enumerate(pieces):
            stream += client_frame(opcode if index == 0 else 0x0, piece, fin=index == len(pieces) - 1, mask=mask)
    connection = ServerConnection(10_000)
    events = [
        event for start in range(0, len(stream), cut) for event in connection.receive_data(stream[start : start + cut])
    ]
    expected = [TextReceived(m) if isinstance(m, str) else BinaryReceived(m) for m in messages]
    assert events == expected
