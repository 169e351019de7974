"""The server side of RTMP played from a script, with pyrtmp's chunk framing and AMF0 (not ours)."""

from __future__ import annotations

from bridge.rtmp import amf0
from bridge.rtmp.client import HANDSHAKE_SIZE
from tests.support import reference_rtmp as reference


class ScriptedServer:
    """Plays the server side of RTMP with pyrtmp's chunk framing and AMF0 (not ours)."""

    def __init__(self) -> None:
        self.received = b""  # everything the client sent after the handshake (pyrtmp re-reads it all)
        self.seen = 0

    def handshake(self, client_bytes: bytes) -> bytes:
        assert client_bytes[0] == 3 and len(client_bytes) == 1 + HANDSHAKE_SIZE
        return b"\x03" + b"S" * HANDSHAKE_SIZE + client_bytes[1:]

    def command(self, *values: amf0.AmfValue, stream_id: int = 0) -> bytes:
        return reference.write_message(3, 20, stream_id, 0, reference.amf0_encode(*values))

    def messages_from(self, data: bytes) -> list[tuple[int, int, int, int, bytes]]:
        """The client's messages in ``data`` (its chunk streams go on from earlier data)."""
        self.received += data
        messages = reference.read_messages(self.received)
        new, self.seen = messages[self.seen :], len(messages)
        return new

    def commands_from(self, data: bytes) -> list[list[amf0.AmfValue]]:
        return [
            reference.amf0_decode(payload)
            for _cs, type_id, *_rest, payload in self.messages_from(data)
            if type_id == 20
        ]
