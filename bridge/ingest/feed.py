"""A WebSocket stream's tracks, numbered for the media worker (sans-IO).

The daemon terminates the WebSocket; the media worker plays out the audio. Each media message
goes to the worker as it came: its track's number (in order of first appearance: Twilio
inbound/outbound, RingCentral perspectives, ACS participants), the platform's timestamp in
samples from the stream's start, and the payload (G.711 µ-law, or 16-bit little-endian PCM as
ACS sends it). The worker's playout orders frames by that timestamp, so reordering is absorbed
and a gap is counted as loss (:mod:`rtp.feed`).
"""

from __future__ import annotations

from bridge.wsmedia.events import AudioReceived
from rtp.codecs import feed_codec_name


class StreamFeed:
    """A stream's audio format and the numbers of its tracks."""

    def __init__(self, encoding: str, rate: int) -> None:
        self.encoding, self.rate = encoding, rate
        self.codec = feed_codec_name(encoding, rate)  # the worker's codec name (rtp.codecs)
        self.tracks: list[str] = []

    def track_of(self, audio: AudioReceived) -> int:
        """The message's track number (a new track gets the next one).

        The protocol core passes at most ``MAX_TRACKS`` distinct tracks (it counts and drops the rest).
        """
        try:
            return self.tracks.index(audio.track)
        except ValueError:
            self.tracks.append(audio.track)
            return len(self.tracks) - 1
