"""Interleaving of one audio lane and an optional video track into FLV messages (sans-IO).

Audio comes out of the encoder a little behind wall time (the AAC look-ahead), video
could be produced exactly on time; so video frames are released only up to the last
audio timestamp. Each call of :meth:`FlvMuxer.mux` then returns messages in timestamp
order, and every message is later than every message of the previous call: the
destinations see one monotonic, interleaved timeline (what RTMP servers and FLV expect).
"""

from __future__ import annotations

from bridge.media.live_video import LiveVideoTrack
from bridge.media.video_track import SlateTrack
from bridge.rtmp.flv import AUDIO, VIDEO, FlvTag


class FlvMuxer:
    def __init__(self, audio_header: bytes | None, video: SlateTrack | LiveVideoTrack | None = None) -> None:
        self.audio_header = audio_header
        self.video = video

    def sequence_headers(self) -> list[FlvTag]:
        """What a destination sends after each publish, before any media."""
        headers = [] if self.audio_header is None else [FlvTag(AUDIO, 0, self.audio_header)]
        if self.video is not None and self.video.sequence_header:  # a live track has none before its first IDR
            headers.append(FlvTag(VIDEO, 0, self.video.sequence_header, keyframe=True))
        return headers

    def mux(self, audio: list[tuple[int, bytes]]) -> list[FlvTag]:
        tags = [FlvTag(AUDIO, timestamp, body) for timestamp, body in audio]
        if self.video is None or not tags:
            return tags
        tags += self.video.due(tags[-1].timestamp)
        tags.sort(key=_timestamp)  # stable: audio before video at the same millisecond
        return tags

    def request_keyframe(self) -> None:
        if self.video is not None:
            self.video.request_keyframe()


def _timestamp(tag: FlvTag) -> int:
    return tag.timestamp
