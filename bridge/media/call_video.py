"""A call's incoming H.264 video: RTP on its own port pair onto the FLV timeline, not transcoded.

Driven by the call's media tick (no timer of its own): :meth:`CallVideo.tick` reads what the
video socket holds, depacketizes it (rtp/h264.py), places each access unit on the FLV
timeline with the audio's delay (rtp/avsync.py), hands it to every route's
:class:`~bridge.media.live_video.LiveVideoTrack`, and asks the far end for a key frame
(rtp/keyframes.py: FIR, PLI) when the depacketizer or a track needs one. Sender reports
of the video stream feed the sync; the audio's are fed by the call's media. When we send
video too (``hasVideo`` true), the same tick sends our slate (bridge/media/video_sender.py)
and the far end's PLI/FIR restart its GOP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bridge.channel.counters import VideoCounters
from bridge.channel.protocol import KeyframeRequestsIgnored, Reporter
from bridge.media.live_video import LiveVideoTrack
from bridge.media.rtp_endpoint import RtpEndpoint
from bridge.media.srtp import SrtpTransform
from bridge.media.video_sender import VideoSender
from rtp.avsync import AvSync
from rtp.h264 import AccessUnit, H264Depacketizer, KeyframeNeeded
from rtp.h264_sps import SpsError, picture_size
from rtp.keyframes import KeyframeCadence, KeyframeRequester, Method, keyframe_requests_in
from rtp.packet import PacketError, parse_rtp
from rtp.peer import SrtpKeys
from rtp.rtcp import parse_sender_report

FRAME_WINDOW = 50  # frames over which the frame rate is measured (2 s at 25 fps)


@dataclass(frozen=True, slots=True)
class VideoRemote:
    """The far end's negotiated video: where it sends from, its payload type and feedback."""

    address: tuple[str, int]
    payload_types: frozenset[int]
    sprop: str = ""
    pli: bool = False
    fir: bool = False
    srtp: SrtpKeys | None = None


class CallVideo:
    """Receives one far end's H.264 stream for the call's routes."""

    def __init__(
        self,
        remote: VideoRemote,
        endpoint: RtpEndpoint,
        our_ssrc: int,
        sync: AvSync,
        delay: Callable[[], float],
        ask_by_info: Callable[[], None] = lambda: None,
        keyframe_seconds: float = 2.0,
        report: Reporter = lambda event: None,
    ) -> None:
        self.remote, self.endpoint, self.sync = remote, endpoint, sync
        self.srtp = SrtpTransform(remote.srtp) if remote.srtp else None
        self.depacketizer = H264Depacketizer(remote.sprop)
        self.requester = KeyframeRequester(our_ssrc, fir_ok=remote.fir, pli_ok=remote.pli)
        # Regular key frames (the destinations' keyframeSeconds), for players that join late.
        self.cadence = KeyframeCadence(keyframe_seconds)
        self._report = report
        self._ignoring_noted = False
        self._now = 0.0
        self._ask_by_info = ask_by_info  # RFC 5168 SIP INFO, sent by the daemon in the call's dialog
        self.tracks: list[LiveVideoTrack] = []
        self._delay = delay  # the audio's current playout delay (seconds): video gets the same
        self._origin: float | None = None  # our time of FLV millisecond 0 (set by the call's media)
        self._ssrc: int | None = None
        self._wanted = True
        self.packets = self.malformed = self.foreign = self.other_payload = self.ssrc_changes = 0
        self.srtp_failures = 0
        self.size = (0, 0)
        self._frame_times: deque[int] = deque(maxlen=FRAME_WINDOW)  # RTP timestamps of the last frames
        self.sender: VideoSender | None = None  # our slate to the far end (hasVideo true)
        self.sending = True  # False while the far end holds the call
        self._send_allowed = True  # False once a re-offer makes the far end's video line not receive
        endpoint.set_rtcp_handler(self._on_rtcp)

    def update_remote(self, address: tuple[str, int], send: bool, srtp: SrtpKeys | None) -> None:
        """A re-INVITE/UPDATE moved the far end's video, changed whether it takes ours (RFC 3264
        8.3) or re-keyed it (RFC 4568 7.1.4)."""
        self.remote = dataclasses.replace(self.remote, address=address)
        self._send_allowed = send
        if srtp is not None and (self.srtp is None or self.srtp.keys != srtp):
            self.srtp = SrtpTransform(srtp)

    def set_origin(self, clock_start: float, offset_ms: float) -> None:
        """FLV time 0 is our time ``clock_start`` minus the audio's leading offset."""
        self._origin = clock_start - offset_ms / 1000

    def tick(self, now: float) -> None:
        self._now = now
        offset = time.time() - now
        for data, source, arrival in self.endpoint.receive(offset):
            plain = self.srtp.unprotect(data) if self.srtp is not None and source == self.remote.address else data
            if plain is None:
                self.srtp_failures += 1
            elif source == self.remote.address:
                self._on_rtp(plain, min(arrival, now))
            else:
                self.foreign += 1
        self._deliver(self.depacketizer.poll(now))
        self._ask_for_keyframe(now)
        if self.sender is not None:
            for packet in self.sender.poll(now, self.sending and self._send_allowed):
                self.endpoint.send(self.srtp.protect(packet) if self.srtp else packet, self.remote.address)

    def _on_rtp(self, data: bytes, arrival: float) -> None:
        try:
            packet = parse_rtp(data)
        except PacketError:
            self.malformed += 1
            return
        if packet.payload_type not in self.remote.payload_types:
            self.other_payload += 1
            return
        self.packets += 1
        if packet.ssrc != self._ssrc:
            self._new_source(packet.ssrc)
        self.sync.packet("video", packet.timestamp, arrival)
        events = self.depacketizer.push(
            packet.sequence_number, packet.timestamp, packet.marker, packet.payload, arrival
        )
        self._deliver(events)

    def _new_source(self, ssrc: int) -> None:
        """A new SSRC (a transfer, a re-INVITE to another device, an MCU switching): its own
        numbering and clock (RFC 3550 8.2), so a fresh depacketizer waiting for its IDR, and sync
        anchored anew; the tracks keep their timeline (no timestamp goes back)."""
        if self._ssrc is not None:
            self.ssrc_changes += 1
            self.depacketizer = H264Depacketizer(self.remote.sprop)
            self.sync.reset("video")
            self._wanted = True
        self._ssrc = ssrc

    def _deliver(self, events: Sequence[object]) -> None:
        for event in events:
            if isinstance(event, AccessUnit):
                self._measure(event)
                at_ms = self._flv_ms(event.timestamp)
                if at_ms is not None:
                    for track in self.tracks:
                        track.add(event, at_ms)
            elif isinstance(event, KeyframeNeeded):
                self._wanted = True

    def _measure(self, unit: AccessUnit) -> None:
        """Frame rate over the last FRAME_WINDOW frames; picture size from each key frame's SPS."""
        self._frame_times.append(unit.timestamp)
        if unit.keyframe:
            self.cadence.keyframe(self._now)
            with contextlib.suppress(SpsError):  # an SPS we cannot read: keep the last size
                self.size = picture_size(unit.nals[0])

    @property
    def frame_rate(self) -> float:
        times = self._frame_times
        span = (times[-1] - times[0]) % (1 << 32) if len(times) > 1 else 0
        return (len(times) - 1) * 90000 / span if span else 0.0

    def _flv_ms(self, timestamp: int) -> int | None:
        local = self.sync.local_time("video", timestamp)
        if local is None or self._origin is None:
            return None
        return max(0, int((local + self._delay() - self._origin) * 1000))

    def _ask_for_keyframe(self, now: float) -> None:
        wanted = self._wanted or self.cadence.due(now) or any(track.keyframe_wanted for track in self.tracks)
        if not wanted or self._ssrc is None:
            return
        request = self.requester.request(self._ssrc, now)
        if request is None:
            return
        self._wanted = False
        self.cadence.asked(now)
        if self.cadence.ignoring and not self._ignoring_noted:
            self._ignoring_noted = True  # once a call: the counters tell the rest
            self._report(KeyframeRequestsIgnored(method=request.method.value, unanswered=self.cadence.unanswered))
        if request.method is Method.INFO:
            self._ask_by_info()
        else:
            host, port = self.remote.address
            packet = self.srtp.protect_rtcp(request.packet) if self.srtp else request.packet
            self.endpoint.send_rtcp(packet, (host, port + 1))

    def _on_rtcp(self, data: bytes, source: tuple[str, int]) -> None:
        if source[0] != self.remote.address[0]:
            return
        if self.srtp is not None:
            plain = self.srtp.unprotect_rtcp(data)
            if plain is None:
                self.srtp_failures += 1
                return
            data = plain
        report = parse_sender_report(data)
        if report is not None:
            self.sync.sender_report("video", report.ntp_seconds, report.rtp_timestamp)
        if self.sender is not None and keyframe_requests_in(data, self.sender.ssrc):
            self.sender.keyframe_requested()

    def counters(self) -> VideoCounters:
        stats = self.depacketizer.stats
        track = self.tracks[0] if self.tracks else None
        offset = self.sync.arrival_offset("video", "audio")
        return VideoCounters(
            videoPackets=self.packets,
            videoForeignPackets=self.foreign,
            videoOtherPayloadPackets=self.other_payload,
            videoFramesReceived=stats.access_units,
            videoKeyframesReceived=stats.keyframes,
            videoLostPackets=stats.lost_packets,
            keyframeRequests=self.requester.sent,
            keyframesAnswered=self.cadence.answered,
            keyframeRequestsUnanswered=self.cadence.unanswered,
            videoFramesPublished=track.frames if track else 0,
            videoStalls=track.stalls if track else 0,
            videoSsrcChanges=self.ssrc_changes,
            videoSrtpFailures=self.srtp_failures,
            videoWidth=self.size[0],
            videoHeight=self.size[1],
            videoFrameRate=round(self.frame_rate, 2),
            videoArrivalOffsetMs=round(offset * 1000, 1) if offset is not None else None,
            videoRtpFramesSent=self.sender.frames_sent if self.sender else 0,
            keyframeRequestsReceived=self.sender.requests if self.sender else 0,
        )
