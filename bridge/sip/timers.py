"""RFC 3261 timer values, section 17.1.1.1 and table 4 (appendix A)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """T1 (RTT estimate), T2 (max non-INVITE retransmit interval), T4 (max message lifetime)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def transaction_timeout(self) -> float:
        """Timers B, F, H and J: 64*T1."""
        return 64 * self.t1
