"""Splitting a TCP/TLS byte stream into SIP messages, RFC 3261 section 18.3, sans-IO.

Content-Length is mandatory on stream transports; headers and bodies are capped
so a peer cannot make us buffer without bound. CRLF keep-alives (RFC 5626
section 3.5.1) between messages are reported so the driver can answer pings.
"""

from __future__ import annotations

import re

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*\r?$", re.I | re.M)
_HEADER_END = b"\r\n\r\n"


class FramingError(ValueError):
    """The stream cannot be framed (oversized, or no Content-Length): close the connection."""


class StreamFramer:
    def __init__(self) -> None:
        self._buffer = bytearray()
        self.pings = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Return every complete message now buffered; raise :class:`FramingError`."""
        self._buffer += data
        messages: list[bytes] = []
        while True:
            self._skip_keepalives()
            message = self._next_message()
            if message is None:
                return messages
            messages.append(message)

    def _skip_keepalives(self) -> None:
        while self._buffer.startswith(b"\r\n"):
            if self._buffer.startswith(b"\r\n\r\n"):
                self.pings += 1
                del self._buffer[:4]
            elif len(self._buffer) >= 3 or self._buffer == b"\r\n":
                del self._buffer[:2]
            else:
                return

    def _next_message(self) -> bytes | None:
        end = self._buffer.find(_HEADER_END)
        if end < 0:
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise FramingError(f"no end of headers within {MAX_HEADER_BYTES} bytes")
            return None
        if end > MAX_HEADER_BYTES:
            raise FramingError(f"headers longer than {MAX_HEADER_BYTES} bytes")
        lengths = _CONTENT_LENGTH.findall(bytes(self._buffer[:end]))
        if len(lengths) != 1:
            raise FramingError("a stream message needs exactly one Content-Length (section 18.3)")
        body_length = int(lengths[0])
        if body_length > MAX_BODY_BYTES:
            raise FramingError(f"body of {body_length} bytes exceeds {MAX_BODY_BYTES}")
        total = end + len(_HEADER_END) + body_length
        if len(self._buffer) < total:
            return None
        message = bytes(self._buffer[:total])
        del self._buffer[:total]
        return message
