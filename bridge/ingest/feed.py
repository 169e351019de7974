"""A WebSocket stream's audio as RTP for the call's media worker (sans-IO).

The daemon terminates the WebSocket; the media worker plays out RTP. Each media message
becomes RTP packets (RFC 3550 5.1) sent over loopback to the call's worker port, so an
ingest call and a SIP call share the same jitter buffer, concealment, late-packet counting,
mixing and encoding. Numbering comes from the platform's timestamps, not from arrival
order: a message's RTP timestamp is its sample offset from the stream's start, and its
sequence number counts 20 ms frames of that offset, so reordering is absorbed and a gap is
counted as loss by the worker's RFC 3550 statistics.

Tracks (Twilio inbound/outbound, RingCentral perspectives, ACS participants) are told apart
by SSRC: track ``i`` (in order of first appearance) is ``FEED_SSRC + i``.

Formats: G.711 µ-law as payload type 0; 16-bit little-endian PCM as sent by ACS under the
internal payload format ``S16LE`` (payload type 96, never offered in SDP: RTP's own L16 is
big-endian, RFC 3551 4.5.11, and a byte swap each way would gain nothing on loopback).
"""

from __future__ import annotations

import struct

from bridge.ingest.core import MAX_TRACKS
from bridge.ingest.events import AudioReceived

FEED_SSRC = 0x1A6E5700
S16LE_PAYLOAD_TYPE = 96
FRAME_SECONDS = 0.02
_HEADER = struct.Struct("!BBHII")


def track_index(ssrc: int) -> int | None:
    """Which track an SSRC of the feed carries (None: not one of ours)."""
    index = ssrc - FEED_SSRC
    return index if 0 <= index < MAX_TRACKS else None


class RtpFeed:
    """Numbers a stream's audio as RTP, one SSRC per track."""

    def __init__(self, encoding: str, rate: int) -> None:
        self.encoding, self.rate = encoding, rate
        self.payload_type = 0 if encoding == "pcmu" else S16LE_PAYLOAD_TYPE
        self.sample_bytes = 1 if encoding == "pcmu" else 2
        self.frame = round(rate * FRAME_SECONDS)  # samples per RTP packet
        self.tracks: list[str] = []
        self.packets = 0

    def packets_for(self, audio: AudioReceived) -> list[bytes]:
        """RTP packets of at most 20 ms each for one media message.

        The protocol core passes at most MAX_TRACKS distinct tracks (it counts and drops the rest).
        """
        if audio.track not in self.tracks:
            self.tracks.append(audio.track)
        ssrc = FEED_SSRC + self.tracks.index(audio.track)
        step = self.frame * self.sample_bytes
        payload = audio.payload
        datagrams = []
        for offset in range(0, len(payload), step):
            timestamp = audio.timestamp + offset // self.sample_bytes
            sequence = round(timestamp / self.frame)
            header = _HEADER.pack(0x80, self.payload_type, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
            datagrams.append(header + payload[offset : offset + step])
        self.packets += len(datagrams)
        return datagrams
