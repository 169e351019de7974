"""Receiver statistics per RFC 3550 appendix A.1, A.3 and A.8."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

_SEQ_MOD = 1 << 16
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100
RECENT = 1024  # sequence numbers remembered for duplicate detection (about 20 s of 20 ms packets)


def _no_sequences() -> bytearray:
    return bytearray(_SEQ_MOD // 8)


def _recent_ring() -> array[int]:
    return array("H", bytes(2 * RECENT))


@dataclass(slots=True)
class ReceptionStats:
    """Sequence tracking, loss and interarrival jitter for one SSRC."""

    clock_rate: int = 8000
    received: int = 0
    base_sequence: int = 0
    cycles: int = 0
    max_sequence: int = 0
    jitter: float = 0.0
    duplicates: int = 0
    lost_before_restart: int = 0
    _last_transit: int | None = None
    _started: bool = False
    # The last RECENT distinct sequence numbers: a bit per number, and the ring that says which to
    # forget (plain buffers, so the compiled receive path rtp._fast keeps them in step).
    _seen: bytearray = field(default_factory=_no_sequences)
    _recent: array[int] = field(default_factory=_recent_ring)
    _recent_count: int = 0
    _recent_next: int = 0

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_sequence

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_sequence + 1 if self._started else 0

    @property
    def lost(self) -> int:
        """Packets lost for this SSRC: expected minus distinct packets received (RFC 3550 A.3,
        without letting duplicates hide losses)."""
        return self.expected - (self.received - self.duplicates)

    @property
    def lost_total(self) -> int:
        """Packets lost over the whole call, across SSRC changes."""
        return self.lost_before_restart + max(self.lost, 0)

    @property
    def jitter_ms(self) -> float:
        return self.jitter * 1000.0 / self.clock_rate

    def restart(self) -> None:
        """Start counting afresh, e.g. for a new SSRC (the loss so far is kept in lost_total)."""
        self.lost_before_restart += max(self.lost, 0)
        self.received = self.duplicates = 0
        self._seen = _no_sequences()
        self._recent_count = self._recent_next = 0
        self._started = False
        self._last_transit = None
        self.cycles = 0

    def update(self, sequence: int, timestamp: int, arrival_seconds: float) -> None:
        """Account for one packet that arrived at ``arrival_seconds`` (any epoch)."""
        self.received += 1
        if self._is_duplicate(sequence):
            self.duplicates += 1
            return
        self._update_sequence(sequence)
        transit = int(arrival_seconds * self.clock_rate) - timestamp
        if self._last_transit is not None:
            delta = abs(transit - self._last_transit)
            if delta < self.clock_rate * 10:
                self.jitter += (delta - self.jitter) / 16.0
        self._last_transit = transit

    def _is_duplicate(self, sequence: int) -> bool:
        """Seen among the last RECENT distinct sequence numbers (otherwise remembered from now on)."""
        seen, bit = self._seen, 1 << (sequence & 7)
        if seen[sequence >> 3] & bit:
            return True
        if self._recent_count == RECENT:
            oldest = self._recent[self._recent_next]
            seen[oldest >> 3] &= ~(1 << (oldest & 7)) & 0xFF
        else:
            self._recent_count += 1
        self._recent[self._recent_next] = sequence
        self._recent_next = (self._recent_next + 1) % RECENT
        seen[sequence >> 3] |= bit
        return False

    def _update_sequence(self, sequence: int) -> None:
        if not self._started:
            self._started = True
            self.base_sequence = sequence
            self.max_sequence = sequence
            return
        delta = (sequence - self.max_sequence) % _SEQ_MOD
        if delta < _MAX_DROPOUT:
            if sequence < self.max_sequence:
                self.cycles += _SEQ_MOD
            self.max_sequence = sequence
        elif delta > _SEQ_MOD - _MAX_MISORDER:
            return  # reordered or duplicate packet from the recent past
        else:  # a large jump: treat as a restart of the sequence space
            self.base_sequence = sequence - (self.extended_max - self.base_sequence)
            self.cycles = 0
            self.max_sequence = sequence
