"""H.264 over RTP (sans-IO): RFC 6184 depacketization into access units, and :func:`packetize`.

Feed :meth:`H264Depacketizer.push` with each RTP packet's fields and ``now``; it returns
events: :class:`AccessUnit` (the NAL units of one picture, in decoding order, with its RTP
timestamp and whether it is an IDR), :class:`ParameterSets` when SPS/PPS first arrive or
change (a new AVC sequence header is due), and :class:`KeyframeNeeded` when the picture
cannot be decoded any more (loss, or no IDR yet) so that the caller asks the far end for
one (RFC 4585 PLI, RFC 5104 FIR or RFC 5168 SIP INFO). :meth:`poll` at :meth:`deadline`
releases what waits behind a gap that will not be filled.

- Packetization (RFC 6184 section 5.6-5.8): single NAL unit packets (types 1-23), STAP-A (24),
  FU-A (28). STAP-B (25), MTAP16/24 (26, 27) and FU-B (29), which only the interleaved mode
  uses, are counted and dropped (we offer packetization-mode 0 and 1 only).
- Reordering: packets wait in a small buffer by sequence number; a gap is given up after
  ``max_wait`` seconds or when ``window`` newer packets have arrived.
- An access unit ends at the marker bit (section 5.1) or when the timestamp changes.
- After loss, access units are discarded until the next IDR: a decoder fed a picture with
  missing references shows grey or smeared frames, which viewers notice more than a freeze.
- Parameter sets come from ``sprop-parameter-sets`` (section 8.1) and in band; in-band ones
  win, and every IDR carries the latest SPS/PPS in front so that a player joining at any
  keyframe can decode.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

NAL_IDR, NAL_SPS, NAL_PPS = 5, 7, 8
STAP_A, STAP_B, MTAP16, MTAP24, FU_A, FU_B = 24, 25, 26, 27, 28, 29
_SEQ_MOD = 1 << 16
# An access unit larger than this is a far end's fault or an attack (a 4K IDR is about 1-2 MB):
# it is dropped as broken, so one endless run of fragments cannot grow the worker's memory.
MAX_ACCESS_UNIT_BYTES = 4 * 1024 * 1024
_SPROP_ITEM = re.compile(r"[A-Za-z0-9+/]+=*")


@dataclass(frozen=True, slots=True)
class AccessUnit:
    timestamp: int  # RTP, 90 kHz
    nals: tuple[bytes, ...]
    keyframe: bool


@dataclass(frozen=True, slots=True)
class ParameterSets:
    sps: bytes
    pps: bytes


@dataclass(frozen=True, slots=True)
class KeyframeNeeded:
    reason: str  # "start", "loss"


Event = AccessUnit | ParameterSets | KeyframeNeeded


@dataclass(slots=True)
class DepacketizerStats:
    packets: int = 0
    access_units: int = 0
    keyframes: int = 0
    discarded_units: int = 0  # dropped while waiting for an IDR
    lost_packets: int = 0
    unsupported_packets: int = 0  # STAP-B, MTAP, FU-B
    malformed_packets: int = 0
    reordered_packets: int = 0
    oversized_units: int = 0  # over MAX_ACCESS_UNIT_BYTES: dropped


def parse_sprop(value: str) -> list[bytes]:
    """RFC 6184 section 8.1 sprop-parameter-sets: base64 NAL units separated by commas."""
    units = []
    for item in _SPROP_ITEM.findall(value):
        try:
            unit = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            continue
        if unit:
            units.append(unit)
    return units


@dataclass(slots=True)
class _Pending:
    timestamp: int
    marker: bool
    payload: bytes
    arrived: float


@dataclass(slots=True)
class _Unit:
    timestamp: int
    nals: list[bytes] = field(default_factory=list)
    fragment: bytearray | None = None
    broken: bool = False
    size: int = 0  # bytes received for it so far


class H264Depacketizer:
    """One H.264 RTP stream (one SSRC at a time) into access units."""

    def __init__(self, sprop: str = "", window: int = 64, max_wait: float = 0.1) -> None:
        self.stats = DepacketizerStats()
        self._window, self._max_wait = window, max_wait
        self._pending: dict[int, _Pending] = {}
        self._next: int | None = None  # the extended sequence number expected next
        self._highest = -1
        self._unit: _Unit | None = None
        self._sps = self._pps = b""
        self._announced = (b"", b"")
        self._need_idr = True
        self._asked = False
        for nal in parse_sprop(sprop):
            self._note_parameter_set(nal)

    # -- input -------------------------------------------------------------------------

    def push(self, sequence: int, timestamp: int, marker: bool, payload: bytes, now: float) -> list[Event]:
        """One RTP packet's sequence number, timestamp, marker bit and payload."""
        self.stats.packets += 1
        extended = self._extend(sequence)
        if self._next is not None and extended < self._next:
            return []  # late or duplicate: its place has been given up
        if extended in self._pending:
            return []
        if extended < self._highest:
            self.stats.reordered_packets += 1
        self._highest = max(self._highest, extended)
        self._pending[extended] = _Pending(timestamp, marker, payload, now)
        if self._next is None:
            self._next = extended
        return self._drain(now)

    def deadline(self) -> float | None:
        """When the oldest packet waiting behind a gap is given up (call :meth:`poll` then)."""
        if not self._pending:
            return None
        return min(p.arrived for p in self._pending.values()) + self._max_wait

    def poll(self, now: float) -> list[Event]:
        return self._drain(now)

    def _extend(self, sequence: int) -> int:
        if self._highest < 0:
            return sequence
        base = self._highest
        delta = (sequence - base + _SEQ_MOD // 2) % _SEQ_MOD - _SEQ_MOD // 2
        return base + delta

    def _drain(self, now: float) -> list[Event]:
        events: list[Event] = []
        while self._pending and self._next is not None:
            packet = self._pending.pop(self._next, None)
            if packet is None:
                if not self._gap_given_up(now):
                    break
                skipped = min(self._pending) - self._next
                self.stats.lost_packets += skipped
                self._next += skipped
                self._lose(events)
                continue
            self._next += 1
            events += self._packet(packet)
        return events

    def _gap_given_up(self, now: float) -> bool:
        assert self._next is not None
        oldest = min(p.arrived for p in self._pending.values())
        return now - oldest >= self._max_wait or self._highest - self._next >= self._window

    # -- packets -----------------------------------------------------------------------

    def _packet(self, packet: _Pending) -> list[Event]:
        events: list[Event] = []
        unit = self._unit
        if unit is not None and unit.timestamp != packet.timestamp:
            events += self._finish()  # no marker seen: the timestamp change ends the unit
        if self._unit is None:
            self._unit = _Unit(packet.timestamp)
        self._depacketize(self._unit, packet.payload)
        if packet.marker:
            events += self._finish()
        return events

    def _depacketize(self, unit: _Unit, payload: bytes) -> None:
        if not payload:
            self.stats.malformed_packets += 1
            return
        unit.size += len(payload)
        if unit.size > MAX_ACCESS_UNIT_BYTES:
            if not unit.broken:
                self.stats.oversized_units += 1
            unit.broken, unit.nals, unit.fragment = True, [], None
            return
        kind = payload[0] & 0x1F
        if 1 <= kind <= 23:
            unit.nals.append(payload)
        elif kind == STAP_A:
            self._stap_a(unit, payload)
        elif kind == FU_A:
            self._fu_a(unit, payload)
        elif kind in (STAP_B, MTAP16, MTAP24, FU_B):
            self.stats.unsupported_packets += 1
        else:
            self.stats.malformed_packets += 1

    def _stap_a(self, unit: _Unit, payload: bytes) -> None:
        """RFC 6184 5.7.1: 16-bit size, then the NAL unit, repeated."""
        offset = 1
        while offset + 2 <= len(payload):
            size = int.from_bytes(payload[offset : offset + 2], "big")
            offset += 2
            if size == 0 or offset + size > len(payload):
                self.stats.malformed_packets += 1
                return
            unit.nals.append(payload[offset : offset + size])
            offset += size

    def _fu_a(self, unit: _Unit, payload: bytes) -> None:
        """RFC 6184 5.8: FU indicator (F, NRI), FU header (S, E, type), fragment."""
        if len(payload) < 2:
            self.stats.malformed_packets += 1
            return
        start, end = payload[1] & 0x80, payload[1] & 0x40
        if start:
            unit.fragment = bytearray([(payload[0] & 0xE0) | (payload[1] & 0x1F)])
        elif unit.fragment is None:
            unit.broken = True  # a middle or end without its start: the start was lost
            return
        unit.fragment += payload[2:]
        if end:
            unit.nals.append(bytes(unit.fragment))
            unit.fragment = None

    # -- access units ------------------------------------------------------------------

    def _lose(self, events: list[Event]) -> None:
        if self._unit is not None:
            self._unit.broken = True
        self._need_idr = True
        self._ask(events, "loss")

    def _ask(self, events: list[Event], reason: str) -> None:
        if not self._asked:
            self._asked = True
            events.append(KeyframeNeeded(reason))

    def _finish(self) -> list[Event]:
        unit, self._unit = self._unit, None
        events: list[Event] = []
        if unit is None:
            return events
        if unit.fragment is not None:
            unit.broken = True  # the end of a fragmented NAL unit never came
        for nal in unit.nals:
            self._note_parameter_set(nal)
        if (self._sps, self._pps) != self._announced and self._sps and self._pps:
            self._announced = (self._sps, self._pps)
            events.append(ParameterSets(self._sps, self._pps))
        pictures = [nal for nal in unit.nals if nal[0] & 0x1F not in (NAL_SPS, NAL_PPS)]
        keyframe = any(nal[0] & 0x1F == NAL_IDR for nal in pictures)
        if unit.broken:
            self._need_idr = True
            self._ask(events, "loss")
        if not pictures or unit.broken or (self._need_idr and not keyframe) or not self._sps:
            if pictures:
                self.stats.discarded_units += 1
                self._ask(events, "start" if self.stats.keyframes == 0 else "loss")
            return events
        self._need_idr, self._asked = False, False
        if keyframe:
            self.stats.keyframes += 1
            pictures = [self._sps, self._pps, *pictures]
        self.stats.access_units += 1
        events.append(AccessUnit(unit.timestamp, tuple(pictures), keyframe))
        return events

    def _note_parameter_set(self, nal: bytes) -> None:
        kind = nal[0] & 0x1F if nal else 0
        if kind == NAL_SPS:
            self._sps = nal
        elif kind == NAL_PPS:
            self._pps = nal


def packetize(nals: Sequence[bytes], mtu: int = 1200) -> list[bytes]:
    """RTP payloads of one access unit (RFC 6184): a NAL unit that fits is sent alone (single
    NAL unit packet, section 5.6, valid in packetization-mode 0 and 1); a larger one is split
    into FU-A fragments (section 5.8: indicator F|NRI|28, header S|E|type), mode 1 only."""
    payloads: list[bytes] = []
    for nal in nals:
        if len(nal) <= mtu:
            payloads.append(nal)
            continue
        indicator, kind, body = (nal[0] & 0xE0) | FU_A, nal[0] & 0x1F, nal[1:]
        step = mtu - 2
        for start in range(0, len(body), step):
            header = kind | (0x80 if start == 0 else 0) | (0x40 if start + step >= len(body) else 0)
            payloads.append(bytes([indicator, header]) + body[start : start + step])
    return payloads
