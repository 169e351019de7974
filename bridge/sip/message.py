"""Parsing and serialising SIP messages, on top of :mod:`sipmessage`.

sipmessage gives typed headers (Via, Address, URI, CSeq, auth). This module
adds what a transport needs: a parse that never raises anything but
:class:`SipParseError`, the RFC 3261 section 8.1.1 mandatory-header check,
Content-Length handling (section 18.3 / 20.14) and identifier generation.
"""

from __future__ import annotations

import re
import secrets

from sipmessage import CSeq, Message, Request, Response, Via

MAGIC_COOKIE = "z9hG4bK"
"""Branch prefix of RFC 3261 compliant transactions, section 8.1.1.7."""

_MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")
_FOLD = re.compile(rb"\r\n[ \t]+")
_QUOTED = re.compile(rb'("(?:[^"\\]|\\.)*")')
_SEPARATOR_SPACE = re.compile(rb"[ \t]*([/;=,])[ \t]*")
_SPACES = re.compile(rb"[ \t]+")
_VIA_NAMES = (b"via", b"v")
_BARE_IPV6_RECEIVED = re.compile(rb";received=([0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)(?=[;,]|$)")
_HEADER_LINE = re.compile(rb"^(?P<name>[!#$%&'*+\-.0-9A-Z^_`a-z|~]+)[ \t]*:[ \t]*(?P<value>.*?)[ \t]*$")
MAX_DATAGRAM = 65507


class SipParseError(ValueError):
    """A datagram that is not a well-formed SIP message."""


def new_branch() -> str:
    """A fresh, globally unique Via branch (section 8.1.1.7)."""
    return MAGIC_COOKIE + secrets.token_hex(10)


def new_tag() -> str:
    """A fresh From/To tag (section 19.3)."""
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    """A fresh Call-ID (section 8.1.1.4)."""
    return f"{secrets.token_hex(12)}@{host}"


def parse_message(data: bytes) -> Request | Response:
    """Parse one datagram into a request or response.

    Raises :class:`SipParseError` for anything malformed, never another error.
    """
    try:
        message = Message.parse(_normalize_headers(data))
        for name in _MANDATORY:
            if message.headers.get(name) is None:
                raise SipParseError(f"missing mandatory header {name}")
        cseq = message.cseq
        message.via  # noqa: B018  (validates every Via value)
        message.from_address  # noqa: B018
        message.to_address  # noqa: B018
        # Address lists the call reads later (a malformed one must fail here, not inside a dialog)
        message.contact  # noqa: B018
        message.record_route  # noqa: B018
        message.route  # noqa: B018
        length = message.content_length
    except SipParseError:
        raise
    except (ValueError, UnicodeDecodeError, IndexError, KeyError, TypeError) as exc:
        raise SipParseError(str(exc) or type(exc).__name__) from None
    if isinstance(message, Request) and cseq.method != message.method:
        raise SipParseError(f"CSeq method {cseq.method} does not match {message.method}")
    if not 0 <= cseq.sequence < 2**31:
        raise SipParseError("CSeq number out of range (section 8.1.1.5)")
    if isinstance(message, Response) and not 100 <= message.code <= 699:
        raise SipParseError(f"status code {message.code} out of range")
    if length is not None and length < 0:
        raise SipParseError("negative Content-Length")
    if length is not None:
        if length > len(message.body):
            raise SipParseError("body shorter than Content-Length")
        message.body = message.body[:length]
    return message


def _normalize_headers(data: bytes) -> bytes:
    """Unfold continuation lines and drop whitespace around header colons (RFC 3261 7.3.1)."""
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        raise SipParseError("no empty line after the headers")
    lines = _FOLD.sub(b" ", head).split(b"\r\n")
    normalized = [lines[0]]
    for line in lines[1:]:
        match = _HEADER_LINE.match(line)
        if match is None:
            raise SipParseError(f"malformed header line {line[:60]!r}")
        value = match["value"]
        if match["name"].lower() in _VIA_NAMES:
            value = _tighten(value)
        normalized.append(match["name"] + b": " + value)
    return b"\r\n".join(normalized) + b"\r\n\r\n" + body


def _tighten(value: bytes) -> bytes:
    """Remove the LWS that RFC 3261's SLASH/SEMI/EQUAL/COMMA allow (outside quoted strings)."""
    pieces = _QUOTED.split(value)
    for index in range(0, len(pieces), 2):
        piece = _SEPARATOR_SPACE.sub(rb"\1", _SPACES.sub(b" ", pieces[index]))
        pieces[index] = _BARE_IPV6_RECEIVED.sub(rb";received=[\1]", piece)  # RFC 3261 allows it bare
    return b"".join(pieces)


def serialize(message: Request | Response) -> bytes:
    """Encode a message, setting Content-Length from its body (section 20.14)."""
    message.content_length = len(message.body)
    return bytes(message)


def top_via(message: Request | Response) -> Via:
    return message.via[0]


def branch_of(message: Request | Response) -> str:
    """The branch parameter of the topmost Via, or '' if there is none."""
    return top_via(message).parameters.get("branch") or ""


def make_cseq(sequence: int, method: str) -> CSeq:
    return CSeq(sequence=sequence, method=method)


def copy_headers(source: Request | Response, target: Request | Response, *names: str) -> None:
    """Copy headers verbatim (all values, in order) from one message to another."""
    for name in names:
        values = source.headers.getlist(name)
        if values:
            target.headers.setlist(name, list(values))


def build_response(request: Request, code: int, phrase: str, to_tag: str | None = None) -> Response:
    """A response to ``request`` with the headers section 8.2.6.2 copies."""
    response = Response(code, phrase)
    copy_headers(request, response, "Via", "From", "Call-ID", "CSeq")
    to = request.to_address
    if to_tag is not None and "tag" not in to.parameters and request.method != "ACK":
        to = type(to)(uri=to.uri, name=to.name, parameters=to.parameters.replace(tag=to_tag))
    response.to_address = to
    return response
