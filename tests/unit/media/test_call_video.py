"""A far end that ignores key-frame requests is asked every 0.5 s once the interval is near, noted
once in the timeline and counted (review finding 15). Real loopback sockets: the far end's side
reads the RTCP PLIs itself, checking their bytes against RFC 4585's layout; time is a fake clock
handed to ``tick``."""

from __future__ import annotations

import asyncio
import base64
import socket
import struct

from bridge.channel.protocol import KeyframeRequestsIgnored, MediaReport
from bridge.media.call_video import CallVideo, VideoRemote
from bridge.media.rtp_endpoint import RtpEndpoint
from rtp.avsync import AvSync
from rtp.packet import RtpPacket
from tests.support.ports import free_even_range

SPS = bytes([0x67, 0x42, 0xE0, 0x1F, 0xDA, 0x02, 0x80])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
IDR = bytes([0x65, 0x88, 0x84]) + bytes(range(200))
SPROP = f"{base64.b64encode(SPS).decode()},{base64.b64encode(PPS).decode()}"


def _plis(sock: socket.socket, media_ssrc: int) -> int:
    """PLIs (RFC 4585 §6.3.1: V=2, FMT=1, PT=206, media source SSRC at bytes 8-12) waiting on ``sock``."""
    count = 0
    while True:
        try:
            data = sock.recv(2048)
        except BlockingIOError:
            return count
        first, packet_type = data[0], data[1]
        count += first == 0x81 and packet_type == 206 and struct.unpack_from("!I", data, 8)[0] == media_ssrc


async def test_an_ignoring_far_end_is_noted_once_and_counted() -> None:
    first, _ = free_even_range(4)
    endpoint = await RtpEndpoint.open([first], "127.0.0.1")
    far_rtp, far_rtcp = (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
    )
    far_rtp.bind(("127.0.0.1", first + 2))
    far_rtcp.bind(("127.0.0.1", first + 3))
    far_rtcp.setblocking(False)
    reports: list[MediaReport] = []
    remote = VideoRemote(("127.0.0.1", first + 2), frozenset({96}), SPROP, pli=True, fir=False)
    sync = AvSync({"audio": 8000, "video": 90000})
    video = CallVideo(remote, endpoint, 0x1234, sync, lambda: 0.0, keyframe_seconds=2.0,
                      report=reports.append)  # fmt: skip
    try:
        far_rtp.sendto(RtpPacket(96, 1, 9000, 0xABCD, IDR, marker=True).serialize(), ("127.0.0.1", first))
        await asyncio.sleep(0.05)
        video.tick(0.0)  # the key frame arrives at t=0; the start's own request went out before it
        start_requests = _plis(far_rtcp, 0xABCD)
        for step in range(1, 61):  # 6 s, no key frame ever again
            video.tick(step / 10)
        await asyncio.sleep(0.05)
        periodic = _plis(far_rtcp, 0xABCD)
    finally:
        endpoint.close()
        far_rtp.close()
        far_rtcp.close()
    counters = video.counters()
    # asked at 1.5 s, then every 0.5 s: 1.5 … 6.0 (10 requests), none answered
    assert periodic == 10 and counters.keyframeRequests == start_requests + 10
    assert counters.keyframeRequestsUnanswered >= 9 and counters.keyframesAnswered <= 1
    assert len(reports) == 1 and isinstance(reports[0], KeyframeRequestsIgnored)  # once, not once a request
    assert reports[0].method == "pli" and reports[0].unanswered >= 3
