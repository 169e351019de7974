"""RTP, RFC 4733 events, SDP and G.711 for the scripted far ends, written from the RFCs.

Independent of the bridge's ``rtp`` and ``bridge.sip.sdp`` packages: a far end that reads and
writes the wire with the bridge's own code would agree with the bridge's bugs.

- RTP fixed header: RFC 3550 §5.1.
- telephone-event payload: RFC 4733 §2.3 (event, E bit, volume, duration); events 0-15 are
  0-9, *, #, A-D (§3.2); the end packet is sent three times (§2.5.1.4), so an event is taken once
  per RTP timestamp.
- G.711 µ-law: ITU-T G.711's segment encoding (the reference encoder's steps, checked against
  the standard library's audioop in tests/unit/support/test_wire.py).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

RTP_HEADER = struct.Struct("!BBHII")
DIGITS = "0123456789*#ABCD"
ULAW_SILENCE = 0xFF  # µ-law for zero (positive zero)


@dataclass(frozen=True)
class Rtp:
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def rtp(payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return RTP_HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF, timestamp & 0xFFFFFFFF,
                           ssrc) + payload  # fmt: skip


def read_rtp(data: bytes) -> Rtp | None:
    """The packet in ``data`` (version 2; CSRCs, extension and padding honoured), or None."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    first, second, sequence, timestamp, ssrc = RTP_HEADER.unpack_from(data)
    offset = 12 + 4 * (first & 0x0F)
    if first & 0x10:  # header extension: 16-bit profile, 16-bit length in words
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    end = len(data) - (data[-1] if first & 0x20 and data else 0)
    if offset > end:
        return None
    return Rtp(second & 0x7F, bool(second & 0x80), sequence, timestamp, ssrc, data[offset:end])


@dataclass
class Rfc4733Digits:
    """Digits from telephone-event packets, one per event (per RTP timestamp), when it ends."""

    digits: list[str] = field(default_factory=list)
    durations: list[int] = field(default_factory=list)
    _ended: set[tuple[int, int]] = field(default_factory=set)

    def packet(self, ssrc: int, timestamp: int, payload: bytes) -> None:
        if len(payload) < 4:
            return
        event, flags, duration = struct.unpack_from("!BBH", payload)
        if not flags & 0x80 or (ssrc, timestamp) in self._ended:
            return
        self._ended.add((ssrc, timestamp))
        self.digits.append(DIGITS[event] if event < len(DIGITS) else f"event{event}")
        self.durations.append(duration)


def ulaw_encode(samples: npt.NDArray[np.int16]) -> bytes:
    """ITU-T G.711 µ-law as the reference encoder computes it: 14-bit magnitude, clipped at 8159,
    biased by 0x21, segment = the first of 0x3F, 0x7F, ... 0x1FFF it fits, 4 mantissa bits, inverted."""
    x = samples.astype(np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.where(x < 0, -x, x), 8159) + 0x21
    segment = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), magnitude)
    value = np.where(segment >= 8, 0x7F, (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return ((value ^ mask) & 0xFF).astype(np.uint8).tobytes()


def sdp_audio_address(body: bytes) -> tuple[str, int]:
    """Where the offer wants its audio: the session's (or the audio line's) c= and the m=audio port."""
    text = body.decode()
    port = int(re.search(r"^m=audio (\d+) ", text, re.M)[1])  # type: ignore[index]
    audio = text[text.index("m=audio") :]
    connection = re.search(r"^c=IN IP[46] (\S+)", audio, re.M) or re.search(r"^c=IN IP[46] (\S+)", text, re.M)
    assert connection is not None, text
    return connection[1], port


def sdp_attributes(body: bytes) -> list[str]:
    return re.findall(r"^a=(.*?)\r?$", body.decode(), re.M)
