"""Daemon-wide services a call session uses: SIP transport, ports, DNS, encoders."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

from bridge.config import BridgeConfig, split_host_port
from bridge.media.encoder import AacEncoder, AacSettings
from bridge.sip.timers import TimerSettings
from bridge.sip.transport import SipTransport
from rtp.ports import PortAllocator


class ResolveError(Exception):
    """The SIP domain could not be resolved; the message says which and why."""


@dataclass(slots=True)
class Services:
    config: BridgeConfig
    sip: SipTransport
    ports: PortAllocator
    timers: TimerSettings

    @property
    def rtp_bind_host(self) -> str:
        return split_host_port(self.config.sip.listen)[0]

    async def resolve_sip(self, domain: str, port: int) -> tuple[str, int]:
        """A-record lookup off the event loop (getaddrinfo runs in the executor)."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(domain, port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise ResolveError(f"cannot resolve sipDomain {domain!r}: {exc.strerror}") from None
        host, resolved_port = infos[0][4][:2]
        return str(host), int(resolved_port)

    async def local_address_towards(self, destination: tuple[str, int]) -> str:
        """``sip.public_address``, or the address of the interface routing to ``destination``.

        Connecting a UDP socket sends nothing; the kernel only picks a route.
        """
        if self.config.sip.public_address:
            return self.config.sip.public_address
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.setblocking(False)
            probe.connect(destination)
            return str(probe.getsockname()[0])
        finally:
            probe.close()

    def new_encoder(self) -> AacEncoder:
        media = self.config.media
        return AacEncoder(AacSettings(media.aac_sample_rate, media.aac_bitrate, media.aac_coder))
