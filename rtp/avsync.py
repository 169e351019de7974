"""Audio/video synchronisation of one call (sans-IO): every track's RTP time onto our clock.

Each track's RTP timestamps count from an unrelated random start (RFC 3550 section 5.1), so
two tracks are related only through the far end's wall clock, which RTCP sender reports give
per track: (NTP time, RTP timestamp) pairs of the same instant (section 6.4.1). The far end's
wall clock in turn is related to ours by the packets' arrival: transit = arrival - capture time,
the smallest transit over a sliding window being the network's fixed delay. So:

    our time of a sample = far-end capture time (from RTP via the track's SR) + smallest transit

With the same smallest transit applied to both tracks, both get the same delay, and since it
is re-measured continuously, a far-end clock that runs fast or slow (tens of ppm) moves both
tracks together instead of pulling them apart: a 50 ppm difference is 90 ms after 30 minutes.

Before a track has had a sender report, its capture times are its RTP times anchored at its
first packet's arrival; a track that starts late is anchored when it starts, so it is still
placed right. When the first reports arrive, the mapping switches to them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

_TS_MODULO = 1 << 32
_TS_HALF = 1 << 31
NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900 to 1970 (RFC 5905)


@dataclass(slots=True)
class _Track:
    clock_rate: int
    first: tuple[int, float] | None = None  # (RTP timestamp, arrival) of the first packet
    report: tuple[int, float] | None = None  # (RTP timestamp, NTP seconds) of the latest SR
    transits: deque[tuple[float, float]] = field(default_factory=deque)  # (arrival, transit), min at left

    def capture(self, timestamp: int, from_report: bool) -> float:
        anchor = self.report if from_report else self.first
        assert anchor is not None
        rtp, seconds = anchor
        delta = (timestamp - rtp + _TS_HALF) % _TS_MODULO - _TS_HALF
        return seconds + delta / self.clock_rate


class AvSync:
    """Maps (track, RTP timestamp) to our clock, the same way for every track of the call.

    ``window`` is how far back the smallest transit is looked for (seconds): long enough to
    see a packet that came through without queueing, short enough to follow clock drift.
    The far end's capture times come from sender reports once every track that has started
    has had one, and from first arrivals until then.
    """

    def __init__(self, clock_rates: dict[str, int], window: float = 10.0) -> None:
        self._tracks = {name: _Track(rate) for name, rate in clock_rates.items()}
        self._window = window
        self._reports = False  # whether capture times come from sender reports

    def sender_report(self, track: str, ntp_time: float, rtp_timestamp: int) -> None:
        """An RTCP SR of ``track`` (NTP seconds, RTP timestamp of the same instant)."""
        self._tracks[track].report = (rtp_timestamp, ntp_time)
        self._update_domain()

    def reset(self, track: str) -> None:
        """The track's source changed (new SSRC, RFC 3550 8.2): anchor it anew, wait for its SR."""
        self._tracks[track] = _Track(self._tracks[track].clock_rate)
        self._update_domain()

    def packet(self, track: str, timestamp: int, arrival: float) -> None:
        """A packet of ``track`` arrived at our time ``arrival``."""
        state = self._tracks[track]
        if state.first is None:
            state.first = (timestamp, arrival)
            self._update_domain()
        transit = arrival - state.capture(timestamp, self._reports)
        queue = state.transits
        while queue and queue[-1][1] >= transit:
            queue.pop()
        queue.append((arrival, transit))
        while queue[0][0] < arrival - self._window:
            queue.popleft()

    def _update_domain(self) -> None:
        started = [t for t in self._tracks.values() if t.first is not None]
        reports = bool(started) and all(t.report is not None for t in started)
        if reports != self._reports:
            self._reports = reports
            for track in self._tracks.values():
                track.transits.clear()  # transits in the other domain no longer apply

    def transit(self) -> float | None:
        """The smallest transit seen over the window, over all tracks (seconds)."""
        minima = [t.transits[0][1] for t in self._tracks.values() if t.transits]
        return min(minima) if minima else None

    def arrival_offset(self, track: str, reference: str) -> float | None:
        """How much later ``track`` arrives than ``reference`` for the same capture instant (seconds):
        the far end's encoder and network difference that the mapping corrects; None until known."""
        mine, theirs = self._tracks[track].transits, self._tracks[reference].transits
        return mine[0][1] - theirs[0][1] if mine and theirs else None

    def local_time(self, track: str, timestamp: int) -> float | None:
        """Our time at which this sample would have arrived without queueing; None if unknown yet."""
        state, transit = self._tracks[track], self.transit()
        if state.first is None or transit is None:
            return None
        return state.capture(timestamp, self._reports) + transit
