"""Where a call's audio comes from, chosen once per call: RTP from a far end, or an ingest feed.

Both give the pipeline the same things: :meth:`pull` of played-out audio at :attr:`rate`, the
time audio was last heard (for ``rtp.timeout``), the delay they add, each track's own audio
for per-track recordings, and their receive counters. What only RTP has (SRTP, RTCP reports,
DTMF in and out, our paced keep-alive silence, the far end's hold) lives in :class:`RtpSource`;
an ingest call's frames go straight into per-track playout in :class:`FeedSource`.

Both are sans-IO, with aioquic's contract: datagrams and frames go in with the time they
arrived (:meth:`RtpSource.receive_datagram`, :meth:`RtpSource.receive_rtcp`,
:meth:`FeedSource.push`), time goes in (:meth:`RtpSource.handle_timer`, :meth:`RtpSource.send_due`),
and what to send comes out (:meth:`RtpSource.datagrams_to_send`) with typed events
(:meth:`RtpSource.next_event`). No socket, clock or asyncio here: the driver
(:mod:`bridge.media.call_media`) owns those.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.config import RtpConfig
from bridge.media.decoders import CodecMedia
from bridge.media.far_end import FarEndMedia
from bridge.media.pacer import on_grid
from bridge.media.srtp import SrtpTransform
from rtp.codecs import EVENT_PAYLOAD_TYPES
from rtp.feed import FeedTracks
from rtp.peer import Peer
from rtp.playout import PlayoutBuffer
from rtp.receiver import RtpReceiver
from rtp.rtcp import RtcpReporter, SenderReport, parse_sender_report
from rtp.sender import SilenceSender

Samples = npt.NDArray[np.int16]
Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class DtmfHeard:
    """A digit the far end sent as RFC 4733 events (noted on the call's timeline)."""

    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A datagram to send: to the far end's RTP port, or (``rtcp``) to its RTCP port."""

    data: bytes
    address: Address
    rtcp: bool = False


def new_playout(codec: CodecMedia, rtp: RtpConfig) -> PlayoutBuffer:
    """A playout timeline at the codec's audio rate, starting ``rtp.jitter_delay_ms`` deep."""
    rate = codec.codec.audio_rate
    return PlayoutBuffer(
        initial_delay=rtp.jitter_delay_ms * rate // 1000,
        encoding="pcmu" if codec.decode is None else "linear",
        rate=rate,
        samples_per_tick=codec.codec.samples_per_tick,
    )


class FeedSource:
    """An ingest call's tracks (:mod:`rtp.feed`), fed by the daemon's frames; no RTP, no socket."""

    def __init__(self, codec: CodecMedia, rtp: RtpConfig, stereo: bool) -> None:
        sample_bytes = 1 if codec.decode is None else 2
        self.tracks = FeedTracks(lambda: new_playout(codec, rtp), codec.decode, sample_bytes, stereo)
        self.rate = codec.codec.audio_rate

    def push(self, track: int, timestamp: int, payload: bytes, now: float) -> None:
        self.tracks.push(track, timestamp, payload, now)

    def pull(self, n: int, now: float) -> Samples:
        return self.tracks.pull(n, now)

    def last_heard(self) -> float | None:
        return self.tracks.last_frame_at

    def silent_for(self, last_heard: float, now: float) -> float:
        return now - last_heard

    @property
    def buffered_samples(self) -> int:
        return self.tracks.buffered_samples

    def track_blocks(self) -> dict[int, Samples] | None:
        return self.tracks.track_blocks()

    def counters(self) -> dict[str, Any]:
        return self.tracks.counters()


class RtpSource:
    """The far end's RTP: receiver, SRTP, RTCP reports, DTMF, and our paced silence toward it."""

    def __init__(self, peer: Peer, codec: CodecMedia, rtp: RtpConfig, send: bool, now: float) -> None:
        self.far_end = FarEndMedia(peer, now)
        self.srtp = SrtpTransform(peer.srtp) if peer.srtp else None
        self.codec = codec
        self.rate = codec.codec.audio_rate
        self.receiver = self._new_receiver(peer, rtp)
        self.reporter = RtcpReporter(secrets.randbits(32), now)
        self.sender = self._new_sender(peer, now) if send else None
        self.on_audio_rtp: Callable[[int, float], None] | None = None  # the video's A/V sync
        self.on_sender_report: Callable[[SenderReport], None] | None = None
        self.rtcp_received = 0
        self._outbox: list[Outgoing] = []
        self._events: deque[DtmfHeard] = deque()

    def _new_receiver(self, peer: Peer, rtp: RtpConfig) -> RtpReceiver:
        """RTP in the negotiated codec, on a playout timeline at the codec's audio rate."""
        codec = self.codec.codec
        return RtpReceiver(
            peer.address,
            latch=rtp.latch,
            playout=new_playout(self.codec, rtp),
            telephone_event_pt=peer.event_payload_type,
            clock_rate=codec.rtp_clock,
            audio_pt=peer.payload_type,
            also_audio_pt=codec.payload_type,  # RFC 3264 6.1: ours, or the answer's
            also_event_pt=EVENT_PAYLOAD_TYPES.get(codec.rtp_clock),
            decode=self.codec.decode,
        )

    def _new_sender(self, peer: Peer, now: float) -> SilenceSender:
        return SilenceSender(
            self.reporter.our_ssrc,
            secrets.randbits(16),
            secrets.randbits(32),
            on_grid(now),
            payload_type=peer.payload_type,
            silence=self.codec.silence,
            ticks_per_frame=self.codec.ticks_per_frame,
            event_payload_type=peer.event_payload_type,
        )

    def update(self, peer: Peer, now: float) -> bool:
        """Hold, resume, a new address or new keys (RFC 3264 section 8.4); returns whether held."""
        held = self.far_end.update(peer, now)
        if peer.srtp is not None and (self.srtp is None or self.srtp.keys != peer.srtp):
            self.srtp = SrtpTransform(peer.srtp)
        self.receiver.set_remote(peer.address)
        return held

    def pull(self, n: int, now: float) -> Samples:
        return self.receiver.buffer.pull(n, now)

    def last_heard(self) -> float | None:
        return self.receiver.last_packet_at

    def silent_for(self, last_heard: float, now: float) -> float:
        return self.far_end.silent_for(last_heard, now)

    @property
    def buffered_samples(self) -> int:
        return self.receiver.buffer.depth

    def track_blocks(self) -> dict[int, Samples] | None:
        return None

    # -- datagrams in ------------------------------------------------------------------

    @property
    def plain(self) -> bool:
        """No SRTP and no A/V sync to feed: the compiled path may take the receiver's common packets."""
        return self.srtp is None and self.on_audio_rtp is None

    def receive_datagram(self, data: bytes, source: Address, arrival: float) -> None:
        """One datagram from the RTP port, received at ``arrival`` (the kernel's time)."""
        if self.srtp is not None:
            plain = self.srtp.unprotect(data)
            if plain is None:
                return
            data = plain
        receiver = self.receiver
        receiver.datagram_received(data, source, arrival)
        if receiver.dtmf_events:  # RFC 4733 digits, as they end
            self._events.extend(DtmfHeard(e.digit, e.duration_ms) for e in receiver.dtmf_events)
            receiver.dtmf_events.clear()
        if self.on_audio_rtp is not None and len(data) >= 12 and source == self.receiver.remote:
            self.on_audio_rtp(int.from_bytes(data[4:8], "big"), arrival)

    def receive_rtcp(self, data: bytes, source: Address, now: float) -> None:
        """One datagram from the RTCP port: the far end's reports feed ours (and the video's sync)."""
        self.rtcp_received += 1
        if source[0] != self.far_end.address[0]:
            return
        plain = self.srtp.unprotect_rtcp(data) if self.srtp is not None else data
        if plain is None:
            return
        self.reporter.receive(plain, now)
        if self.on_sender_report is not None and (report := parse_sender_report(plain)) is not None:
            self.on_sender_report(report)

    # -- time ---------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        """Our RTCP report when due (RFC 3550 6.2; :meth:`get_timer` says when)."""
        report = self.reporter.poll(now, self.receiver.ssrc, self.receiver.stats)
        if report is not None:
            host, port = self.far_end.address
            self._outbox.append(
                Outgoing(self.srtp.protect_rtcp(report) if self.srtp else report, (host, port + 1), True)
            )

    def get_timer(self) -> float:
        return self.reporter.get_timer()

    def send_due(self, now: float) -> None:
        """Our keep-alive silence and DTMF due at ``now`` (the worker's grid job calls this every 20 ms)."""
        if self.sender is None:
            return
        datagrams = self.sender.poll(now)  # paced even while held, so its timeline stays continuous
        if self.far_end.receiving:
            protect, address = self.srtp, self.far_end.address
            self._outbox += [Outgoing(protect.protect(d) if protect else d, address) for d in datagrams]

    # -- out ----------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[Outgoing]:
        """What to send now, in order (taken: a second call returns only what came since)."""
        outbox, self._outbox = self._outbox, []
        return outbox

    def next_event(self) -> DtmfHeard | None:
        return self._events.popleft() if self._events else None

    def send_dtmf(self, digits: str, duration_ms: int) -> None:
        if self.sender is not None:
            self.sender.send_dtmf(digits, duration_ms)

    def counters(self) -> dict[str, Any]:
        receiver, playout = self.receiver, self.receiver.buffer.stats
        per_ms = receiver.buffer.rate // 1000
        return {
            "packets": receiver.counters.packets,
            "lost": receiver.stats.lost_total,
            "latePackets": playout.late,
            "duplicatePackets": playout.duplicate,
            "concealedMs": playout.concealed_samples // per_ms,
            "jitterMs": round(receiver.stats.jitter_ms, 2),
            "foreignPackets": receiver.counters.foreign_source,
            "ssrcChanges": receiver.counters.ssrc_changes,
            "dtmfPackets": receiver.counters.telephone_events,
            "rtcpPackets": self.rtcp_received,
            "rtcpReportsSent": self.reporter.sent,
            "silencePacketsSent": self.sender.sent if self.sender else 0,
            "dtmfSent": self.sender.dtmf_sent if self.sender else 0,
            "srtpFailures": self.srtp.failures if self.srtp else 0,
            "silenceInsertedSeconds": round(playout.silence_samples / (per_ms * 1000), 3),
            "comfortNoiseMs": playout.comfort_noise_samples // per_ms,
        }
