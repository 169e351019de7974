"""Our picture to a SIP video far end (sans-IO): the slate GOP as RTP H.264 at a low frame rate.

When ``hasVideo`` is true the video line is ``sendrecv`` and we send, so that endpoints and
MCUs that drop a participant without video keep the call. The picture is the slate, encoded
once per worker for RTP (constrained baseline, slices that fit one packet: see
bridge/media/slate.py) and replayed with advancing timestamps; no call encodes video.

- RFC 6184: every NAL unit of a frame in a packet of its own when it fits (single NAL unit
  packets, section 5.6, which packetization-mode 0 and 1 far ends both accept), FU-A above
  the MTU (section 5.8); the marker bit on the frame's last packet (section 5.1); one 90 kHz
  timestamp per frame advancing by 90000 / fps; SPS and PPS in band in front of every IDR.
- A PLI or FIR from the far end (RFC 4585 6.3.1, RFC 5104 4.3.1) restarts the GOP, so the next
  frame is the IDR (unless the IDR was the frame just sent).
- Frames due while the far end holds the call are skipped, not queued (the timeline stays
  continuous and nothing bursts out at resume).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rtp.h264 import packetize
from rtp.packet import RtpPacket

MAX_CATCH_UP = 2  # frames sent at most per poll after a late tick; older ones are skipped


class VideoSender:
    def __init__(
        self,
        frames: Sequence[Sequence[bytes]],
        fps: int,
        ssrc: int,
        payload_type: int,
        start: float,
        first_sequence: int,
        first_timestamp: int,
    ) -> None:
        self._frames, self._fps = frames, fps
        self.ssrc, self._payload_type = ssrc, payload_type
        self._start = start
        self._sequence, self._timestamp0 = first_sequence, first_timestamp
        self._next = 0  # frame number due next on the call's timeline
        self._gop_start = 0
        self.frames_sent = self.packets_sent = self.keyframes_sent = self.requests = 0

    def next_deadline(self) -> float:
        return self._start + self._next / self._fps

    def keyframe_requested(self) -> None:
        """The far end asked for an IDR: the next frame sent starts the GOP again."""
        self.requests += 1
        if self._next and (self._next - 1 - self._gop_start) % len(self._frames) == 0:
            return  # the IDR just went out; two IDRs in a row would need different idr_pic_ids (7.4.3)
        self._gop_start = self._next

    def poll(self, now: float, sending: bool = True) -> list[bytes]:
        """The RTP packets of the frames due at ``now`` (none while not ``sending``)."""
        due = math.floor((now - self._start) * self._fps + 1e-6) + 1 - self._next  # 1e-6: float rounding
        if due <= 0:
            return []
        skipped = max(0, due - MAX_CATCH_UP) if sending else due
        self._next += skipped
        out: list[bytes] = []
        for _ in range(due - skipped):
            out += self._frame_packets()
            self._next += 1
        return out

    def _frame_packets(self) -> list[bytes]:
        index = (self._next - self._gop_start) % len(self._frames)
        if index == 0:
            self.keyframes_sent += 1
        timestamp = (self._timestamp0 + self._next * 90000 // self._fps) & 0xFFFFFFFF
        payloads = packetize(self._frames[index])
        packets = []
        for number, payload in enumerate(payloads):
            marker = number == len(payloads) - 1
            packet = RtpPacket(self._payload_type, self._sequence, timestamp, self.ssrc, payload, marker)
            packets.append(packet.serialize())
            self._sequence = (self._sequence + 1) & 0xFFFF
        self.frames_sent += 1
        self.packets_sent += len(packets)
        return packets
