"""RTCP receiver reports to the far end (RFC 3550 sections 6.4.2 and A.3), sans-IO."""

from __future__ import annotations

import struct

from rtp.packet import PacketError, ReceiverReport, ReportBlock
from rtp.stats import ReceptionStats

REPORT_INTERVAL = 5.0  # RFC 3550 section 6.2: 5 s minimum
_SR_HEADER = struct.Struct("!BBHIII")


class RtcpReporter:
    """Builds RR packets from the reception statistics at most every REPORT_INTERVAL."""

    def __init__(self, our_ssrc: int, start: float) -> None:
        self.our_ssrc = our_ssrc
        self._next = start + REPORT_INTERVAL
        self._expected_prior = 0
        self._received_prior = 0
        self._last_sr: tuple[int, float] | None = None  # (middle 32 bits of the NTP time, arrival)
        self.sent = 0
        self.received_reports = 0

    def get_timer(self) -> float:
        return self._next

    def receive(self, data: bytes, now: float) -> None:
        """An RTCP packet from the far end; a sender report feeds LSR/DLSR (section 6.4.1)."""
        if len(data) >= _SR_HEADER.size and data[1] == 200:
            _, _, _, _, ntp_high, ntp_low = _SR_HEADER.unpack_from(data)
            self._last_sr = (((ntp_high & 0xFFFF) << 16) | (ntp_low >> 16), now)
        self.received_reports += 1

    def poll(self, now: float, ssrc: int | None, stats: ReceptionStats) -> bytes | None:
        """The RR due at ``now`` (None if not yet due or nothing received yet)."""
        if now < self._next:
            return None
        self._next = now + REPORT_INTERVAL
        if ssrc is None or stats.expected == 0:
            return None
        expected_interval = stats.expected - self._expected_prior
        received_interval = stats.received - self._received_prior
        self._expected_prior, self._received_prior = stats.expected, stats.received
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval <= 0 or lost_interval <= 0 else (lost_interval << 8) // expected_interval
        last_sr, delay = 0, 0
        if self._last_sr is not None:
            last_sr = self._last_sr[0]
            delay = int((now - self._last_sr[1]) * 65536)
        block = ReportBlock(
            ssrc,
            min(fraction, 255),
            max(min(stats.lost, 0x7FFFFF), -0x800000),
            stats.extended_max,
            int(stats.jitter),
            last_sr,
            delay,
        )
        self.sent += 1
        try:
            return ReceiverReport(self.our_ssrc, [block]).serialize()
        except (struct.error, PacketError):
            return None
