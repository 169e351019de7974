"""Prometheus metrics at /metrics, liveness at /healthz and readiness at /readyz.

Counters of finished calls come from the event bus; everything about active calls is
read from the sessions when scraped (no per-packet metric updates on the hot path).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import Counter as Tally
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.calls.record import BaseSession
from bridge.calls.registry import CallManager
from bridge.calls.services import Services
from bridge.channel.probe import probe_arguments
from bridge.ingest.config import INGEST_PROTOCOLS
from bridge.net.connlimit import ACCEPT_ERRORS
from bridge.ops.bus import EventBus
from bridge.ops.looplag import LoopLagMonitor
from bridge.sip.inbound import REASONS
from rest.cluster_metrics import ClusterCollector
from rest.common import MANAGER_KEY

LAG_KEY = web.AppKey("loop_lag", LoopLagMonitor)
FINAL = {"FINISH", "FAILED", "BUSY"}
PROBE_TIMEOUT = 30.0  # seconds for the encoder probe process to start and open the encoder
log = logging.getLogger("bridge.rest")


class _LiveCollector(Collector):
    """Gauges computed at scrape time from the active sessions and the loop monitor."""

    def __init__(self, manager: CallManager, lag: LoopLagMonitor) -> None:
        self._manager, self._lag = manager, lag

    def collect(self) -> Iterator[Metric]:
        sessions = list(self._manager.sessions.values())
        counters = [s.counters() for s in sessions]
        yield GaugeMetricFamily("bridge_active_calls", "Calls not yet ended", value=len(sessions))
        for key, name, help_text in [
            ("packets", "bridge_rtp_packets", "RTP packets received by active calls"),
            ("lost", "bridge_rtp_lost_packets", "RTP packets lost on active calls"),
            ("bytesPublished", "bridge_rtmp_bytes", "Bytes sent to RTMP servers by active calls"),
            ("reconnects", "bridge_rtmp_reconnects", "RTMP republishes after a drop, active calls"),
            ("encodeSeconds", "bridge_encode_seconds", "CPU seconds spent encoding, active calls"),
        ]:
            yield GaugeMetricFamily(name, help_text, value=sum(c.get(key, 0) for c in counters))
        jitter = max((c.get("jitterMs", 0.0) for c in counters), default=0.0)
        yield GaugeMetricFamily(
            "bridge_rtp_jitter_max_ms", "Largest interarrival jitter among active calls", value=jitter
        )
        lag = GaugeMetricFamily("bridge_event_loop_lag_ms", "Event-loop lag over the last minute", labels=["quantile"])
        summary = self._lag.summary()
        for quantile in ("p50", "p99", "max"):
            lag.add_metric([quantile], summary[quantile])
        yield lag
        yield GaugeMetricFamily("bridge_tasks", "asyncio tasks alive in the daemon", value=len(asyncio.all_tasks()))
        yield from self._sources(sessions)
        dropped = CounterMetricFamily(
            "bridge_sip_dropped", "SIP datagrams dropped without an answer, by reason", labels=["reason"]
        )
        drops = self._manager.services.signalling().agent.policy.drops
        for reason in REASONS:
            dropped.add_metric([reason], drops.get(reason, 0))
        yield dropped
        history = self._manager.services.history
        if history is not None:
            yield GaugeMetricFamily(
                "bridge_history_held_back_writes", "History writes waiting for the database", value=history.held_back
            )
            yield CounterMetricFamily(
                "bridge_history_write_failures", "History write attempts the database refused", value=history.failures
            )
        yield from self._workers()
        yield from self._connections()

    def _connections(self) -> Iterator[Metric]:
        """Connections anyone can open (REST, SIP TCP, streams): open, refused at a cap, closed idle."""
        services = self._manager.services
        opened = GaugeMetricFamily("bridge_connections_open", "Open connections by listener", labels=["listener"])
        refused = CounterMetricFamily(
            "bridge_connections_refused", "Connections refused at a cap", labels=["listener", "reason"]
        )
        for name, limiter in sorted(services.connection_limits.items()):
            opened.add_metric([name], limiter.count)
            for reason, count in sorted(limiter.refused.items()):
                refused.add_metric([name, reason], count)
        yield from (opened, refused)
        yield CounterMetricFamily(
            "bridge_sip_tcp_idle_closed",
            "Accepted SIP TCP connections closed with no complete message within sip.tcp_idle_seconds",
            value=services.signalling().tcp_idle_closed,
        )
        yield CounterMetricFamily(
            "bridge_accept_errors", "accept() failures for want of descriptors", value=ACCEPT_ERRORS.count
        )

    def _sources(self, sessions: list[BaseSession]) -> Iterator[Metric]:
        """Active calls by how they arrived, and the ingest endpoints' refusals and closes."""
        by_source = GaugeMetricFamily(
            "bridge_active_calls_by_source",
            "Calls not yet ended, by source (sip or the ingest protocol)",
            labels=["source"],
        )
        counts = Tally(session.source_label() for session in sessions)
        for source in ("sip", *INGEST_PROTOCOLS):
            by_source.add_metric([source], counts.get(source, 0))
        yield by_source
        stats = self._manager.services.ingest_stats
        refused = CounterMetricFamily(
            "bridge_ingest_refused", "Ingest upgrades refused before any call", labels=["route", "protocol", "status"]
        )
        for (route, protocol, status), count in sorted(stats.refused.items()):
            refused.add_metric([route, protocol, str(status)], count)
        closed = CounterMetricFamily(
            "bridge_ingest_closed",
            "Ingest connections closed, by WebSocket close code",
            labels=["route", "protocol", "code"],
        )
        for (route, protocol, code), count in sorted(stats.closed.items()):
            closed.add_metric([route, protocol, str(code)], count)
        early = CounterMetricFamily(
            "bridge_ingest_dropped_before_media",
            "Ingest messages dropped because more came before the call's media ran than are held meanwhile",
            labels=["route", "protocol"],
        )
        for (route, protocol), count in sorted(stats.dropped_before_media.items()):
            early.add_metric([route, protocol], count)
        yield from (refused, closed, early)

    def _workers(self) -> Iterator[Metric]:
        """Per media worker: up, calls, loop lag, CPU seconds and RSS from its last report."""
        pool = self._manager.services.media
        if pool is None:
            return
        up = GaugeMetricFamily("bridge_media_worker_up", "1 while the media worker runs", labels=["worker"])
        calls = GaugeMetricFamily("bridge_media_worker_calls", "Calls on the media worker", labels=["worker"])
        lag = GaugeMetricFamily(
            "bridge_media_worker_loop_lag_ms", "Media worker event-loop lag", labels=["worker", "quantile"]
        )
        cpu = GaugeMetricFamily("bridge_media_worker_cpu_seconds", "Media worker CPU seconds", labels=["worker"])
        rss = GaugeMetricFamily("bridge_media_worker_rss_bytes", "Media worker resident memory", labels=["worker"])
        tasks = GaugeMetricFamily("bridge_media_worker_tasks", "asyncio tasks alive in the worker", labels=["worker"])
        gc_ms = GaugeMetricFamily(
            "bridge_media_worker_gc_ms",
            "The worker's last full garbage collection after calls ended",
            labels=["worker"],
        )
        streams = GaugeMetricFamily(
            "bridge_media_worker_ingest_streams",
            "Ingest WebSockets the worker reads, handed over by the daemon once their call was admitted",
            labels=["worker"],
        )
        fast_path = GaugeMetricFamily(
            "bridge_media_worker_fast_path",
            "1 while the worker runs the media's compiled path (rtp._fast), 0 on the Python reference path only",
            labels=["worker"],
        )
        for row in pool.stats():
            label = str(row["worker"])
            streams.add_metric([label], row["streams"])
            fast_path.add_metric([label], 1.0 if row["fastPath"] else 0.0)
            up.add_metric([label], 1.0 if row["alive"] else 0.0)
            calls.add_metric([label], row["calls"])
            for quantile, value in row["loopLagMs"].items():
                lag.add_metric([label, quantile], value)
            cpu.add_metric([label], row["cpuSeconds"])
            rss.add_metric([label], row["rssBytes"])
            tasks.add_metric([label], row["tasks"])
            gc_ms.add_metric([label], row["gcMs"])
        dropped = CounterMetricFamily(
            "bridge_ingest_frames_dropped",
            "Ingest frames the daemon dropped because the channel to this worker was full",
            labels=["worker"],
        )
        for row in pool.stats():
            dropped.add_metric([str(row["worker"])], row["feedDropped"])
        yield from (up, calls, lag, cpu, rss, tasks, gc_ms, dropped, streams, fast_path)
        yield from _stage_profile(pool.stats())
        yield GaugeMetricFamily(
            "bridge_media_worker_restarts", "Media workers restarted after dying", value=pool.restarts
        )


def _stage_profile(rows: list[dict[str, Any]]) -> Iterator[GaugeMetricFamily]:
    """Per-stage CPU of each worker, present only while the stage profiler runs (bench.stages)."""
    if not any(row["stages"] for row in rows):
        return
    stage = GaugeMetricFamily(
        "bridge_media_stage", "Stage profiler: seconds and calls per media stage", labels=["worker", "stage", "unit"]
    )
    for row in rows:
        for key, value in row["stages"].items():
            name, _, unit = key.rpartition(".")
            stage.add_metric([str(row["worker"]), name, unit], value)
    yield stage


class BridgeMetrics:
    def __init__(self, manager: CallManager, lag: LoopLagMonitor, bus: EventBus) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(_LiveCollector(manager, lag))
        if manager.services.cluster is not None:
            self.registry.register(ClusterCollector(manager.services.cluster))
        self.calls = Counter("bridge_calls", "Calls by final state", ["state"], registry=self.registry)
        self.stream_failures = Counter(
            "bridge_stream_failures", "Destinations given up (stream FAILED)", registry=self.registry
        )
        self.setup = Histogram(
            "bridge_call_setup_seconds",
            "From request to answer",
            registry=self.registry,
            buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60),
        )
        self._subscription = bus.subscribe(limit=10_000)
        self._created: dict[str, datetime] = {}

    async def run(self) -> None:
        while True:
            self._observe((await self._subscription.get()).to_json())

    def _observe(self, event: dict[str, object]) -> None:
        if event["type"] == "stream.state" and event.get("state") == "FAILED":
            self.stream_failures.inc()
        if event["type"] != "call.state":
            return
        call_id, state = str(event["callId"]), str(event["state"])
        at = datetime.fromisoformat(str(event["timestamp"]))
        if state == "PENDING":
            self._created.setdefault(call_id, at)
        elif state == "ESTABLISHED" and call_id in self._created:
            self.setup.observe((at - self._created[call_id]).total_seconds())
        if state in FINAL:
            self.calls.labels(state=state).inc()
            self._created.pop(call_id, None)


METRICS_KEY = web.AppKey("metrics", BridgeMetrics)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_KEY].registry)
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the SIP socket is bound, RTP ports are free and the encoder opens."""
    services = request.app[MANAGER_KEY].services
    problems = []
    try:
        services.signalling().local_address  # noqa: B018
    except (AssertionError, OSError):
        problems.append("SIP socket not bound")
    if services.ports.in_use >= services.ports.capacity:
        problems.append("no free RTP port pair")
    if services.media is not None and services.media.alive < services.media.count:
        problems.append(f"{services.media.count - services.media.alive} media worker(s) restarting")
    if not services.encoder_ready:
        problems.append("encoder could not be opened")
    status = 503 if problems else 200
    return web.json_response({"ready": not problems, "problems": problems}, status=status)


async def legacy_health(request: web.Request) -> web.Response:
    manager = request.app[MANAGER_KEY]
    return web.json_response(
        {
            "activeCalls": len(manager.sessions),
            "rtpPortsInUse": manager.services.ports.in_use,
            "eventLoopLagMs": request.app[LAG_KEY].summary(),
        }
    )


def add_health_routes(app: web.Application, bridge_metrics: BridgeMetrics, lag: LoopLagMonitor) -> None:
    app[METRICS_KEY] = bridge_metrics
    app[LAG_KEY] = lag
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/RESTCall/health", legacy_health)


async def check_encoder(services: Services) -> None:
    """Open an encoder once, in a probe process, so /readyz can say whether it works.

    The probe (:mod:`bridge.media.probe`) keeps PyAV out of the daemon, as media workers do.
    """
    ready = False
    with contextlib.suppress(OSError, TimeoutError):
        ready = await _probe_encoder(probe_arguments(services.config.media.default_output()))
    services.encoder_ready = ready  # one assignment: /readyz never flips while a reload re-checks


async def _probe_encoder(arguments: list[str]) -> bool:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.media.probe",
        *arguments,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            _, errors = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        log.error("%s", errors.decode(errors="replace").strip() or f"encoder probe exited {process.returncode}")
    return process.returncode == 0
