"""The polled RTP socket: every waiting datagram, with the kernel's receive time on our clock."""

from __future__ import annotations

import asyncio
import socket
import time

from bridge.media.rtp_endpoint import RtpEndpoint


async def test_datagrams_are_read_by_polling_with_kernel_receive_times() -> None:
    endpoint = await RtpEndpoint.open(range(42000, 42100, 2), "127.0.0.1")
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    try:
        sender.sendto(b"before the answer", ("127.0.0.1", endpoint.port))
        await asyncio.sleep(0.01)
        assert endpoint.discard_pending() == 1
        sent_at = []
        for n in range(3):
            sent_at.append(time.monotonic())
            sender.sendto(bytes([n]) * 20, ("127.0.0.1", endpoint.port))
            await asyncio.sleep(0.03)
        received = list(endpoint.receive(time.time() - time.monotonic()))
        assert [data[0] for data, _, _ in received] == [0, 1, 2]
        assert all(source == sender.getsockname() for _, source, _ in received)
        for (_, _, arrival), sent in zip(received, sent_at, strict=True):
            assert -0.002 < arrival - sent < 0.005  # when it arrived, not when we polled (up to 90 ms later)
        assert list(endpoint.receive(0.0)) == []
    finally:
        sender.close()
        endpoint.close()
