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
- Stall (camera off, video that starts late): with a ``fallback`` slate GOP, once no frame has
  been due for ``stall_ms`` the track plays the slate picture (its own sequence header first);
  the far end's video takes over again at its next IDR (inter frames before it refer to
  pictures the player no longer has, so they are dropped and a key frame is asked for).
"""

from __future__ import annotations

from collections import deque

from bridge.media.h264 import H264Error, decoder_configuration, to_avcc
from bridge.media.slate import SlateGop
from bridge.media.video_track import SlateTrack
from bridge.rtmp.flv import VIDEO, FlvTag, avc_frame, avc_sequence_header
from rtp.h264 import NAL_PPS, NAL_SPS, AccessUnit

MAX_QUEUED = 250  # frames held for the muxer (10 s at 25 fps); older ones are dropped


class LiveVideoTrack:
    def __init__(self, fallback: SlateGop | None = None, stall_ms: int = 3000) -> None:
        self._queue: deque[tuple[int, AccessUnit]] = deque()
        self._header = b""
        self._sent_header = b""
        self._last_ms = 0
        self._live_ms = 0  # FLV time of the last far-end frame sent (0: none yet)
        self._started = False
        self._fallback, self._stall_ms = fallback, stall_ms
        self._slate: SlateTrack | None = None  # playing the fallback picture
        self.stalls = 0
        self.keyframe_wanted = True  # until the first key frame
        self.frames = 0
        self.keyframes = 0
        self.dropped = 0

    def set_stall_picture(self, gop: SlateGop, stall_ms: int) -> None:
        """The picture to show after ``stall_ms`` without video, unless the route has a slate of its own."""
        if self._fallback is None:
            self._fallback = gop
        self._stall_ms = stall_ms

    @property
    def sequence_header(self) -> bytes:
        """The FLV body of the current AVC sequence header (empty before the first key frame)."""
        return self._slate.sequence_header if self._slate is not None else self._header

    def add(self, unit: AccessUnit, at_ms: int) -> None:
        """One access unit, to be shown at ``at_ms`` on the FLV timeline."""
        if (not self._started or self._slate is not None) and not unit.keyframe:
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
                self._slate = None
                out += self._header_if_changed(unit, at_ms)
                self.keyframes += 1
                self.keyframe_wanted = False
            pictures = [nal for nal in unit.nals if nal[0] & 0x1F not in (NAL_SPS, NAL_PPS)]
            out.append(FlvTag(VIDEO, at_ms, avc_frame(to_avcc(pictures), unit.keyframe), unit.keyframe))
            self._last_ms = self._live_ms = at_ms
            self.frames += 1
        return out + self._stalled(until_ms)

    def _stalled(self, until_ms: int) -> list[FlvTag]:
        """The fallback picture's frames due, once the far end's video has stalled."""
        if self._fallback is None:
            return []
        if self._slate is None and (self._queue or until_ms - self._live_ms < self._stall_ms):
            return []
        out: list[FlvTag] = []
        if self._slate is None:  # from now on (not from the last frame: nothing goes back in time)
            start = max(until_ms, int(self._last_ms + 1000 / self._fallback.fps))
            self._slate = SlateTrack(self._fallback, start)
            self._sent_header = self._slate.sequence_header
            self.stalls += 1
            self.keyframe_wanted = True
            out.append(FlvTag(VIDEO, start, self._sent_header, True))
        tags = self._slate.due(until_ms)
        if tags:
            self._last_ms = tags[-1].timestamp
        return out + tags

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
        if self._slate is not None:
            self._slate.request_keyframe()
