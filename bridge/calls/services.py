"""Daemon-wide services calls use, grouped by role (SIP signalling, media, reporting, admission)."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field

from bridge.cluster.feed import ClusterFeed
from bridge.cluster.registry import ClusterRegistry
from bridge.config import BridgeConfig, split_host_port
from bridge.history import HistoryStore
from bridge.ingest.stats import IngestStats
from bridge.net.connlimit import ConnectionLimiter
from bridge.net.tickets import Tickets
from bridge.ops.bus import EventBus
from bridge.recording.service import Recordings
from bridge.sip.addressing import Destination, Transport
from bridge.sip.dns import ResolveError, SipResolver
from bridge.sip.timers import TimerSettings
from bridge.sip.transport import SipTransport
from bridge.workers.pool import MediaWorkerPool, WorkerUnavailable
from rtp.ports import PortAllocator


class SignallingUnavailable(Exception):
    """This process has no SIP transport (an API-only process, as in the REST contract's tests)."""


@dataclass(slots=True)
class Services:
    """What calls use, by role: SIP signalling (``sip``, ``timers``, ``resolver``), media (``ports``,
    ``media``, ``rtmp_tls``, ``slate_images``), reporting (``bus``, ``history``, ``recordings``,
    ``cluster_feed``), admission and limits (``cluster``, ``max_calls_by_descriptors``,
    ``connection_limits``, ``tickets``). The daemon builds it once every part is open (the history,
    the recordings, the media workers: ``bridge/daemon/run.py``); only the cluster registry, which
    needs the registry of calls, is attached after (``bridge/cluster/startup.py``), and a reload
    replaces the configuration and what is read from it. The REST contract's validation needs only
    the configuration: no SIP socket and no media worker are required to answer a 400
    (``tests/unit/rest/test_app.py``)."""

    config: BridgeConfig
    ports: PortAllocator  # the RTP port pairs (nothing is bound until a call asks)
    sip: SipTransport | None = None  # the SIP role: None where this process places no calls
    timers: TimerSettings = field(default_factory=TimerSettings)
    resolver: SipResolver = field(default_factory=SipResolver)
    rtmp_tls: ssl.SSLContext | None = None
    bus: EventBus = field(default_factory=EventBus)
    encoder_ready: bool = False
    history: HistoryStore | None = None
    max_calls_by_descriptors: int | None = None  # set at start-up from RLIMIT_NOFILE
    media: MediaWorkerPool | None = None  # started by the daemon before it accepts calls
    slate_images: frozenset[str] = frozenset()  # pictures in video.slate_directory (start-up, reload)
    ingest_stats: IngestStats = field(default_factory=IngestStats)
    recordings: Recordings | None = None  # started by the daemon (its store lives in the history database)
    cluster: ClusterRegistry | None = None  # [cluster]: callIds and streams unique across nodes (Redis)
    # Connection caps by listener (rest, sip_tcp), read by the metrics (refusals) at scrape time.
    connection_limits: dict[str, ConnectionLimiter] = field(default_factory=dict)
    tickets: Tickets = field(default_factory=Tickets)  # listen and recording URLs (shared key in a cluster)
    cluster_feed: ClusterFeed | None = None  # [cluster]: the other nodes' events and counters (SSE)

    def signalling(self) -> SipTransport:
        """The SIP transport a call signals on."""
        if self.sip is None:
            raise SignallingUnavailable("this process has no SIP transport")
        return self.sip

    def workers(self) -> MediaWorkerPool:
        if self.media is None:
            raise WorkerUnavailable("the media workers are not started yet; retry in a few seconds")
        return self.media

    @property
    def rtp_bind_host(self) -> str:
        return split_host_port(self.config.sip.listen)[0]

    async def resolve_sip(self, domain: str, port: int | None, transport: Transport) -> list[Destination]:
        """The SIP domain's servers in the order to try them (RFC 3263), looked up without blocking,
        less the addresses the network policy refuses (sip.allowed_networks, link-local, metadata)."""
        found = await self.resolver.targets(domain, port, transport)
        policy = self.config.sip.network_policy()
        allowed = [target for target in found if policy.refusal(target.host) is None]
        if not allowed:
            raise ResolveError(f"sipDomain {domain!r} is refused: {policy.refusal(found[0].host)}")
        return allowed

    async def local_address_towards(self, destination: Destination) -> str:
        """``sip.public_address``, or the address of the interface routing to ``destination``.

        Connecting a UDP socket sends nothing; the kernel only picks a route.
        """
        if self.config.sip.public_address:
            return self.config.sip.public_address
        family = socket.AF_INET6 if ":" in destination.host else socket.AF_INET
        probe = socket.socket(family, socket.SOCK_DGRAM)
        try:
            probe.setblocking(False)
            probe.connect(destination.address)
            return str(probe.getsockname()[0])
        finally:
            probe.close()
