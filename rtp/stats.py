"""Receiver statistics per RFC 3550 appendix A.1, A.3 and A.8."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

_SEQ_MOD = 1 << 16
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100


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
    _recent: deque[int] = field(default_factory=deque)
    _recent_set: set[int] = field(default_factory=set)

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
        self._recent.clear()
        self._recent_set.clear()
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
        """Seen among the last 1024 sequence numbers (about 20 s of 20 ms packets)."""
        if sequence in self._recent_set:
            return True
        self._recent.append(sequence)
        self._recent_set.add(sequence)
        if len(self._recent) > 1024:
            self._recent_set.discard(self._recent.popleft())
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
