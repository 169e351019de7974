"""A call's slate video track (sans-IO): the cached GOP replayed on the call's timeline.

Frame ``n`` of the call is shown at ``offset + n * 1000 / fps`` ms, where ``offset`` is
where the audio track's first sample sits on the FLV timeline (after the AAC encoder's
priming), so picture and sound start together. The GOP is repeated frame by frame; a
key frame request (a destination republished) restarts it, so the next frame is an IDR.
"""

from __future__ import annotations

from bridge.media.slate import SlateGop
from bridge.rtmp.flv import VIDEO, FlvTag


class SlateTrack:
    def __init__(self, gop: SlateGop, offset_ms: float = 0.0) -> None:
        self.gop = gop
        self._offset = offset_ms
        self._next = 0  # frames emitted so far
        self._gop_start = 0  # the frame number at which the current GOP began

    @property
    def sequence_header(self) -> bytes:
        return self.gop.sequence_header

    def timestamp(self, frame: int) -> int:
        return int(self._offset + frame * 1000 / self.gop.fps)

    def due(self, until_ms: int) -> list[FlvTag]:
        """Every frame whose timestamp is at most ``until_ms`` and not yet emitted."""
        frames = self.gop.frames
        out = []
        while (timestamp := self.timestamp(self._next)) <= until_ms:
            index = (self._next - self._gop_start) % len(frames)
            out.append(FlvTag(VIDEO, timestamp, frames[index], index == 0))
            self._next += 1
        return out

    def request_keyframe(self) -> None:
        """Restart the GOP: the next frame is the key frame (free: every frame is cached)."""
        self._gop_start = self._next
