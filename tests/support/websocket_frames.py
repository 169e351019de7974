"""A WebSocket client's frames and opening handshake, built by hand from RFC 6455 (5.2, 5.3, 4.1),
independently of the code under test."""

from __future__ import annotations

import base64
import os
import struct

RFC_MASK = bytes((0x37, 0xFA, 0x21, 0x3D))  # RFC 6455 5.7's masking key


def client_frame(opcode: int, payload: bytes, fin: bool = True, mask: bytes = RFC_MASK, rsv: int = 0) -> bytes:
    """A client's frame, masked byte by byte."""
    first = (0x80 if fin else 0) | rsv | opcode
    size = len(payload)
    if size < 126:
        header = bytes((first, 0x80 | size))
    elif size < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, size)
    return header + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


def opening_handshake(host: str, path: str, headers: dict[str, str]) -> bytes:
    """The client's upgrade request (RFC 6455 4.1)."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade"]
    lines += ["Sec-WebSocket-Version: 13", f"Sec-WebSocket-Key: {key}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
