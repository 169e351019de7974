"""RTCP receiver reports to the far end (RFC 3550 sections 6.4.2 and A.3), sans-IO."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rtp.packet import PacketError, ReceiverReport, ReportBlock
from rtp.stats import ReceptionStats

REPORT_INTERVAL = 5.0  # RFC 3550 section 6.2: 5 s minimum
_SR_HEADER = struct.Struct("!BBHIIII")  # header, sender SSRC, NTP high and low, RTP timestamp


@dataclass(frozen=True, slots=True)
class SenderReport:
    """The sender-info part of an RTCP SR (RFC 3550 section 6.4.1): NTP time and RTP time of one instant."""

    ntp_high: int
    ntp_low: int
    rtp_timestamp: int

    @property
    def ntp_seconds(self) -> float:
        return self.ntp_high + self.ntp_low / (1 << 32)

    @property
    def middle(self) -> int:
        """The middle 32 bits of the NTP timestamp: what a receiver report's LSR echoes."""
        return ((self.ntp_high & 0xFFFF) << 16) | (self.ntp_low >> 16)


def parse_sender_report(data: bytes) -> SenderReport | None:
    """The SR at the start of a (compound) RTCP packet, or None if it does not start with one."""
    if len(data) < _SR_HEADER.size or data[1] != 200:
        return None
    _, _, _, _, ntp_high, ntp_low, rtp_timestamp = _SR_HEADER.unpack_from(data)
    return SenderReport(ntp_high, ntp_low, rtp_timestamp)


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
        report = parse_sender_report(data)
        if report is not None:
            self._last_sr = (report.middle, now)
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
