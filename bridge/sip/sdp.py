"""SDP offers and answers for one audio stream (RFC 4566, RFC 3264).

Typed: :class:`SessionDescription` is built or parsed, and serialised by one
method. Parsing reads each line by its RFC 4566 grammar with regular
expressions and ignores attributes it does not need. Every ``m=`` line is kept,
whatever its media, so that an answer can carry exactly the offer's lines
(RFC 3264 section 6), rejecting the ones we do not use with port 0.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum


class SdpError(ValueError):
    """An SDP body we cannot use: malformed, or no usable audio stream."""


class Direction(StrEnum):
    """Media direction attributes, RFC 3264 section 5.1."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"


@dataclass(frozen=True, slots=True)
class PayloadFormat:
    """One ``a=rtpmap`` entry (plus its ``a=fmtp`` parameters, if any)."""

    payload_type: int
    encoding: str
    clock_rate: int
    parameters: str = ""
    channels: int = 1


PCMU = PayloadFormat(0, "PCMU", 8000)
PCMA = PayloadFormat(8, "PCMA", 8000)
TELEPHONE_EVENT = PayloadFormat(101, "telephone-event", 8000, "0-15")


@dataclass(slots=True)
class MediaDescription:
    """An ``m=`` section (audio unless ``kind`` says otherwise)."""

    port: int
    formats: list[PayloadFormat]
    direction: Direction = Direction.SENDRECV
    connection_address: str | None = None
    ptime: int | None = None
    protocol: str = "RTP/AVP"
    crypto: list[str] = field(default_factory=list)  # RFC 4568 a=crypto values
    kind: str = "audio"  # the media field of the m= line: audio, video, application, ...
    raw_formats: list[str] = field(default_factory=list)  # the format tokens of a non-RTP m= line
    attributes: list[str] = field(default_factory=list)  # other a= values kept in order (rtcp-fb, ...)


@dataclass(slots=True)
class SessionDescription:
    """A session with origin, connection address and media sections."""

    origin_address: str
    connection_address: str
    media: list[MediaDescription] = field(default_factory=list)
    session_id: int = 0
    session_version: int = 0
    username: str = "-"
    session_name: str = "-"

    def serialize(self) -> bytes:
        """Encode per RFC 4566 section 5 (CRLF line ends, fixed field order)."""
        lines = [
            "v=0",
            f"o={self.username} {self.session_id} {self.session_version} IN {address_type(self.origin_address)} "
            f"{self.origin_address}",
            f"s={self.session_name}",
            f"c=IN {address_type(self.connection_address)} {self.connection_address}",
            "t=0 0",
        ]
        for media in self.media:
            lines.extend(_media_lines(media))
        return ("\r\n".join(lines) + "\r\n").encode("ascii")

    def audio(self) -> MediaDescription:
        """The first audio section with a non-zero port."""
        for media in self.media:
            if media.port != 0 and media.kind == "audio":
                return media
        raise SdpError("the SDP has no active audio stream (m=audio with a port)")

    def audio_address(self) -> tuple[str, int]:
        """Where to send RTP / expect it from: (address, port)."""
        media = self.audio()
        return (media.connection_address or self.connection_address, media.port)


def address_type(address: str) -> str:
    """RFC 4566 section 5.7 addrtype: IP6 for IPv6 literals, else IP4."""
    return "IP6" if ":" in address else "IP4"


def _media_lines(media: MediaDescription) -> list[str]:
    payload_types = " ".join([str(f.payload_type) for f in media.formats] or media.raw_formats)
    lines = [f"m={media.kind} {media.port} {media.protocol} {payload_types}"]
    if media.port == 0:
        return lines  # a rejected stream (RFC 3264 section 6): its m= line is all that matters
    if media.connection_address:
        lines.append(f"c=IN {address_type(media.connection_address)} {media.connection_address}")
    for fmt in media.formats:
        channels = f"/{fmt.channels}" if fmt.channels != 1 else ""
        lines.append(f"a=rtpmap:{fmt.payload_type} {fmt.encoding}/{fmt.clock_rate}{channels}")
        if fmt.parameters:
            lines.append(f"a=fmtp:{fmt.payload_type} {fmt.parameters}")
    lines += [f"a=crypto:{value}" for value in media.crypto]
    lines += [f"a={value}" for value in media.attributes]
    if media.ptime:
        lines.append(f"a=ptime:{media.ptime}")
    lines.append(f"a={media.direction.value}")
    return lines


_LINE = re.compile(r"^(?P<type>[a-z])=(?P<value>.*)$")
_ORIGIN = re.compile(r"^\S+ (?P<id>\d+) (?P<version>\d+) IN IP[46] (?P<address>\S+)$")
_CONNECTION = re.compile(r"^IN IP[46] (?P<address>[^/\s]+)(?:/\d+){0,2}$")
_MEDIA = re.compile(r"^(?P<media>\S+) (?P<port>\d+)(?:/\d+)? (?P<proto>\S+)(?P<formats>(?: \S+)*)$")
_RTPMAP = re.compile(r"^rtpmap:(?P<pt>\d+) (?P<encoding>[^/\s]+)/(?P<rate>\d+)(?:/(?P<channels>\d+))?$")
_FMTP = re.compile(r"^fmtp:(?P<pt>\d+) (?P<parameters>.+)$")
_FORMAT = re.compile(r" (\S+)")
_STATIC_FORMATS = {
    0: PCMU,
    8: PCMA,
    9: PayloadFormat(9, "G722", 8000),
    13: PayloadFormat(13, "CN", 8000),
    34: PayloadFormat(34, "H263", 90000),
}


def parse_sdp(body: bytes) -> SessionDescription:
    """Parse an SDP body (RFC 4566 section 5); raise :class:`SdpError` when unusable."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError(f"SDP is not UTF-8: {exc}") from None
    session = SessionDescription(origin_address="", connection_address="")
    current: MediaDescription | None = None
    session_direction = Direction.SENDRECV
    for raw_line in text.splitlines():
        match = _LINE.match(raw_line.strip())
        if match is None:
            continue
        kind, value = match["type"], match["value"]
        if kind == "m":
            current = _parse_media(value, session_direction)
            if current is not None:
                session.media.append(current)
        elif current is None:
            session_direction = _apply_session_line(session, kind, value, session_direction)
        else:
            _apply_media_line(current, kind, value)
    if not session.connection_address and not any(m.connection_address for m in session.media):
        raise SdpError("the SDP has no connection address (c=)")
    return session


def _apply_session_line(session: SessionDescription, kind: str, value: str, direction: Direction) -> Direction:
    if kind == "o" and (origin := _ORIGIN.match(value)):
        session.session_id = int(origin["id"])
        session.session_version = int(origin["version"])
        session.origin_address = origin["address"]
    elif kind == "c":
        session.connection_address = _connection_address(value)
    elif kind == "a" and value in Direction._value2member_map_:
        return Direction(value)
    return direction


def _parse_media(value: str, direction: Direction) -> MediaDescription | None:
    match = _MEDIA.match(value)
    if match is None:
        raise SdpError(f"malformed media line m={value}")
    kind, protocol, tokens = match["media"], match["proto"], _FORMAT.findall(match["formats"])
    if "RTP" not in protocol:  # e.g. m=application 9 UDP/BFCP *: formats are not payload types
        return MediaDescription(int(match["port"]), [], direction, protocol=protocol, kind=kind, raw_formats=tokens)
    formats = []
    for token in tokens:
        if not token.isdigit():
            raise SdpError(f"non-numeric RTP payload type {token!r} in m={kind}")
        pt = int(token)
        formats.append(_STATIC_FORMATS.get(pt, PayloadFormat(pt, "", 0)))
    return MediaDescription(int(match["port"]), formats, direction, protocol=protocol, kind=kind)


def _apply_media_line(media: MediaDescription, kind: str, value: str) -> None:
    if kind == "c":
        media.connection_address = _connection_address(value)
    elif kind == "a" and value in Direction._value2member_map_:
        media.direction = Direction(value)
    elif kind == "a" and (rtpmap := _RTPMAP.match(value)):
        pt = int(rtpmap["pt"])
        channels = int(rtpmap["channels"] or 1)
        media.formats = [
            PayloadFormat(pt, rtpmap["encoding"], int(rtpmap["rate"]), f.parameters, channels)
            if f.payload_type == pt
            else f
            for f in media.formats
        ]
    elif kind == "a" and (fmtp := _FMTP.match(value)):
        pt = int(fmtp["pt"])
        media.formats = [
            dataclasses.replace(f, parameters=fmtp["parameters"]) if f.payload_type == pt else f for f in media.formats
        ]
    elif kind == "a" and value.startswith("ptime:") and value[6:].isdigit():
        media.ptime = int(value[6:])
    elif kind == "a" and value.startswith("crypto:"):
        media.crypto.append(value[len("crypto:") :])
    elif kind == "a" and value.startswith("rtcp-fb:"):
        media.attributes.append(value)


def _connection_address(value: str) -> str:
    """The address of a ``c=`` line (RFC 4566 §5.7): an IP address only. A host name there would
    have to be resolved before every ``sendto`` (a blocking lookup on the media worker's loop, and a
    name a far end could point anywhere); far ends use IP addresses (RFC 3264 §5)."""
    match = _CONNECTION.match(value)
    if match is None:
        raise SdpError(f"malformed connection line c={value}")
    address = match["address"]
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise SdpError(
            f"the connection line names a host ({address[:64]!r}); only IP addresses are supported"
        ) from None
    return address


def build_offer(
    address: str,
    rtp_port: int,
    direction: Direction,
    session_id: int,
    dtmf: bool = True,
    crypto: list[str] | None = None,
    secure_profile: bool = False,
    formats: list[PayloadFormat] | None = None,
) -> SessionDescription:
    """Our offer: ``formats`` (default PCMU plus telephone-event), 20 ms packets; SDES keys if given."""
    if formats is None:
        formats = [PCMU, TELEPHONE_EVENT] if dtmf else [PCMU]
    media = MediaDescription(
        port=rtp_port,
        formats=formats,
        direction=direction,
        ptime=20,
        protocol="RTP/SAVP" if secure_profile else "RTP/AVP",
        crypto=list(crypto or []),
    )
    return SessionDescription(
        origin_address=address,
        connection_address=address,
        media=[media],
        session_id=session_id,
        session_version=session_id,
        session_name="sip-rtmp-bridge",
    )


def mirrored_media(offer: SessionDescription, ours: list[MediaDescription]) -> list[MediaDescription]:
    """The m= lines of an answer to ``offer``: one per offered line, in its order (RFC 3264 6).

    The offer's first active line of each kind we answer (audio, video) gets our line of that
    kind; every other line is rejected with port 0, keeping its media, protocol and formats
    (section 6: a rejected stream still lists at least one format).
    """
    ours_by_kind = {media.kind: media for media in ours}
    answered: list[MediaDescription] = []
    for media in offer.media:
        mine = ours_by_kind.get(media.kind) if media.port != 0 else None
        if mine is not None:
            del ours_by_kind[media.kind]
            answered.append(mine)
        else:
            answered.append(_rejected(media))
    return answered


def _rejected(media: MediaDescription) -> MediaDescription:
    formats, raw = media.formats[:1], media.raw_formats[:1]
    return MediaDescription(0, formats, media.direction, protocol=media.protocol, kind=media.kind, raw_formats=raw)
