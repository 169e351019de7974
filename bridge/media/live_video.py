"""A call's live video track (sans-IO): the far end's H.264 on the call's FLV timeline, not transcoded.

Access units come from :class:`rtp.h264.H264Depacketizer` with their time on the FLV
timeline (milliseconds, computed by the caller from :class:`rtp.avsync.AvSync` with the same
delay as the audio). The track keeps them until the muxer asks for everything up to the last
audio timestamp (:meth:`due`), like the slate track, so audio and video interleave in order.

- Nothing is sent before the first key frame with its parameter sets: a player cannot decode
  inter frames without them (and would show grey).
- When the parameter sets change (a resolution change mid-call) a new AVC sequence header is
  sent in band, just before the key frame that uses them (FLV spec v10 annex E.4.3.1), and
  :attr:`sequence_header` returns it for destinations that republish later.
- Timestamps never go backwards: a frame mapped earlier than the previous one (a late SR
  correction) is sent at the previous frame's time.
- :meth:`request_keyframe` (a destination republished, so its player needs an IDR) is
  recorded in :attr:`keyframe_wanted`; the call's media asks the far end (PLI, FIR or INFO).
"""

from __future__ import annotations

from collections import deque

from bridge.media.h264 import H264Error, decoder_configuration, to_avcc
from bridge.rtmp.flv import VIDEO, FlvTag, avc_frame, avc_sequence_header
from rtp.h264 import NAL_PPS, NAL_SPS, AccessUnit

MAX_QUEUED = 250  # frames held for the muxer (10 s at 25 fps); older ones are dropped


class LiveVideoTrack:
    def __init__(self) -> None:
        self._queue: deque[tuple[int, AccessUnit]] = deque()
        self._header = b""
        self._sent_header = b""
        self._last_ms = 0
        self._started = False
        self.keyframe_wanted = True  # until the first key frame
        self.frames = 0
        self.keyframes = 0
        self.dropped = 0

    @property
    def sequence_header(self) -> bytes:
        """The FLV body of the current AVC sequence header (empty before the first key frame)."""
        return self._header

    def add(self, unit: AccessUnit, at_ms: int) -> None:
        """One access unit, to be shown at ``at_ms`` on the FLV timeline."""
        if not self._started and not unit.keyframe:
            self.keyframe_wanted = True
            return
        self._started = True
        self._queue.append((at_ms, unit))
        if len(self._queue) > MAX_QUEUED:
            self._queue.popleft()
            self.dropped += 1

    def due(self, until_ms: int) -> list[FlvTag]:
        """Every frame due by ``until_ms``, in order, with a sequence header wherever it changes."""
        out: list[FlvTag] = []
        while self._queue and self._queue[0][0] <= until_ms:
            at_ms, unit = self._queue.popleft()
            at_ms = max(at_ms, self._last_ms)
            if unit.keyframe:
                out += self._header_if_changed(unit, at_ms)
                self.keyframes += 1
                self.keyframe_wanted = False
            pictures = [nal for nal in unit.nals if nal[0] & 0x1F not in (NAL_SPS, NAL_PPS)]
            out.append(FlvTag(VIDEO, at_ms, avc_frame(to_avcc(pictures), unit.keyframe), unit.keyframe))
            self._last_ms = at_ms
            self.frames += 1
        return out

    def _header_if_changed(self, unit: AccessUnit, at_ms: int) -> list[FlvTag]:
        sps = next((nal for nal in unit.nals if nal[0] & 0x1F == NAL_SPS), b"")
        pps = next((nal for nal in unit.nals if nal[0] & 0x1F == NAL_PPS), b"")
        try:
            self._header = avc_sequence_header(decoder_configuration(sps, pps))
        except H264Error:  # a parameter set too short to describe: keep the previous header
            return []
        if self._header == self._sent_header:
            return []
        self._sent_header = self._header
        return [FlvTag(VIDEO, at_ms, self._header, True)]

    def request_keyframe(self) -> None:
        self.keyframe_wanted = True
