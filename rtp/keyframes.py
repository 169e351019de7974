"""Asking a far end for a keyframe (sans-IO): RTCP PLI and FIR, SIP INFO picture_fast_update.

- PLI, RFC 4585 section 6.3.1: payload-specific feedback (PT 206), FMT 1, no FCI.
- FIR, RFC 5104 section 4.3.1: PT 206, FMT 4, FCI = media SSRC + a command sequence number
  that increases by one per new request (a repeat of the same request keeps it).
- SIP INFO, RFC 5168: ``application/media_control+xml`` with ``picture_fast_update``, for far
  ends that negotiated no RTCP feedback.

:class:`KeyframeRequester` picks the method from what was negotiated and limits the rate:
at most one request per ``min_interval`` however often the depacketizer asks.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import StrEnum

RTCP_PSFB = 206
FMT_PLI, FMT_FIR = 1, 4
MEDIA_CONTROL_TYPE = "application/media_control+xml"


def pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """RFC 4585 6.3.1: V=2, FMT=1, PT=206, length 2 (three 32-bit words minus one)."""
    return struct.pack("!BBHII", 0x80 | FMT_PLI, RTCP_PSFB, 2, sender_ssrc, media_ssrc)


def fir(sender_ssrc: int, media_ssrc: int, sequence: int) -> bytes:
    """RFC 5104 4.3.1: media source SSRC 0 in the common header, one FCI entry (SSRC, seq, 3 reserved)."""
    return struct.pack("!BBHIIIB3x", 0x80 | FMT_FIR, RTCP_PSFB, 4, sender_ssrc, 0, media_ssrc, sequence & 0xFF)


def picture_fast_update() -> bytes:
    """RFC 5168 section 3: the XML body of a SIP INFO asking for a full picture."""
    root = ET.Element("media_control")
    stream = ET.SubElement(ET.SubElement(root, "vc_primitive"), "to_encoder")
    ET.SubElement(stream, "picture_fast_update")
    return b'<?xml version="1.0" encoding="utf-8" ?>\n' + ET.tostring(root)


class Method(StrEnum):
    FIR = "fir"
    PLI = "pli"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class KeyframeRequest:
    method: Method
    packet: bytes  # RTCP packet, or the SIP INFO body


class KeyframeRequester:
    """One video stream's keyframe requests: FIR if negotiated (ccm fir), else PLI (nack pli), else INFO."""

    def __init__(self, our_ssrc: int, fir_ok: bool, pli_ok: bool, min_interval: float = 0.5) -> None:
        self.method = Method.FIR if fir_ok else Method.PLI if pli_ok else Method.INFO
        # A SIP INFO is a transaction through every proxy on the way: at most one a second.
        self._ssrc, self._interval = our_ssrc, max(min_interval, 1.0) if self.method is Method.INFO else min_interval
        self._sequence = 0
        self._last: float | None = None
        self.sent = 0

    def request(self, media_ssrc: int, now: float) -> KeyframeRequest | None:
        """A request to send now, or None if one went out less than ``min_interval`` ago."""
        if self._last is not None and now - self._last < self._interval:
            return None
        self._last = now
        self.sent += 1
        if self.method is Method.FIR:
            self._sequence = (self._sequence + 1) & 0xFF
            return KeyframeRequest(self.method, fir(self._ssrc, media_ssrc, self._sequence))
        if self.method is Method.PLI:
            return KeyframeRequest(self.method, pli(self._ssrc, media_ssrc))
        return KeyframeRequest(self.method, picture_fast_update())


def keyframe_requests_in(data: bytes, our_ssrc: int) -> int:
    """How many PLI and FIR messages of a compound RTCP packet ask *our* stream for a key frame.

    RFC 4585 6.1: every RTCP packet has a 4-byte header (V, FMT, PT, length in 32-bit words
    minus one); PLI (PT 206, FMT 1) names the media source in its header, FIR (FMT 4, RFC 5104
    4.3.1.1) in each 8-byte FCI entry. A truncated or malformed packet ends the scan.
    """
    count, offset = 0, 0
    while offset + 12 <= len(data):
        first, packet_type, length = struct.unpack_from("!BBH", data, offset)
        end = offset + (length + 1) * 4
        if first >> 6 != 2 or end > len(data):
            break
        if packet_type == RTCP_PSFB and first & 0x1F == FMT_PLI:
            count += struct.unpack_from("!I", data, offset + 8)[0] == our_ssrc
        elif packet_type == RTCP_PSFB and first & 0x1F == FMT_FIR:
            entries = range(offset + 12, end - 7, 8)
            count += any(struct.unpack_from("!I", data, at)[0] == our_ssrc for at in entries)
        offset = end
    return count


class KeyframeCadence:
    """Regular key frames from a far end that sends one only when asked (sans-IO, fake-clock tested).

    A player that joins a live stream sees nothing until the next key frame (nginx-rtmp's live
    module holds video back until one), and CDNs want one at a fixed interval. So when the last key
    frame is ``interval - lead`` old, :meth:`due` says to ask (FIR, PLI or INFO: the requester's
    choice); the answer arrives about one frame time later, so key frames come at most ``interval``
    apart, even when one request goes unanswered (baresip let one in twenty pass under load): it is
    repeated after ``retry`` seconds, still inside the interval. ``IGNORED_AFTER`` unanswered in a
    row mark the far end as ignoring requests (reported once: :attr:`ignoring`).
    """

    IGNORED_AFTER = 3

    def __init__(self, interval: float, lead: float = 0.5, retry: float = 0.5) -> None:
        self.interval, self.lead, self.retry = interval, lead, retry
        self._last_key: float | None = None
        self._asked_at: float | None = None  # the request not answered yet
        self.answered = self.unanswered = 0
        self._streak = 0
        self.ignoring = False

    def keyframe(self, now: float) -> None:
        """A key frame arrived (answering the pending request, if any)."""
        if self._asked_at is not None:
            self.answered += 1
            self._streak = 0
            self.ignoring = False
        self._asked_at, self._last_key = None, now

    def due(self, now: float) -> bool:
        """Whether to ask now (nothing before the first key frame: the start asks for its own)."""
        if self._last_key is None or now - self._last_key < self.interval - self.lead:
            return False
        return self._asked_at is None or now - self._asked_at >= self.retry

    def asked(self, now: float) -> None:
        """A request went out (for this cadence or for any other reason)."""
        if self._asked_at is not None:
            self.unanswered += 1
            self._streak += 1
            self.ignoring = self.ignoring or self._streak >= self.IGNORED_AFTER
        self._asked_at = now
