"""Retransmission of our 2xx to a re-INVITE until its ACK, RFC 3261 section 13.3.1.4."""

from __future__ import annotations

from bridge.sip.addressing import Destination
from bridge.sip.timers import TimerSettings


class AnswerRetransmitter:
    """Resends a 2xx at T1, 2*T1, ... (capped at T2) until ACKed or 64*T1 pass."""

    def __init__(self, data: bytes, destination: Destination, cseq: int, now: float, timers: TimerSettings) -> None:
        self.data = data
        self.destination = destination
        self.cseq = cseq
        self._timers = timers
        self._interval = timers.t1
        self._next = now + timers.t1
        self._deadline = now + timers.transaction_timeout
        self.done = False
        self.gave_up = False

    def get_timer(self) -> float | None:
        return None if self.done else min(self._next, self._deadline)

    def acknowledged(self, cseq: int) -> bool:
        if not self.done and cseq == self.cseq:
            self.done = True
            return True
        return False

    def poll(self, now: float) -> list[tuple[bytes, Destination]]:
        if self.done:
            return []
        if now >= self._deadline:
            self.done = self.gave_up = True
            return []
        out = []
        if now >= self._next:
            out.append((self.data, self.destination))
            self._interval = min(self._interval * 2, self._timers.t2)
            self._next = now + self._interval
        return out
