"""The daemon: binds SIP and REST, runs call sessions, shuts down gracefully."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

from aiohttp import web

from bridge.calls.registry import CallManager
from bridge.calls.services import Services
from bridge.cluster.startup import leave_cluster, open_cluster, run_cluster
from bridge.config import BridgeConfig, split_host_port
from bridge.daemon.fdlimit import connection_budget, ensure_headroom
from bridge.daemon.reload import Reloader, inbound_policy
from bridge.daemon.sdnotify import Notifier
from bridge.history import HistoryStore, history_backend
from bridge.net.connlimit import ACCEPT_ERRORS
from bridge.net.tls import client_context
from bridge.ops.bus import EventBus
from bridge.ops.logs import REDACTOR
from bridge.ops.looplag import LoopLagMonitor
from bridge.ops.webhooks import WebhookDispatcher
from bridge.recording.service import Recordings
from bridge.recording.startup import open_recordings
from bridge.sip.agent import SipAgent
from bridge.sip.dns import SipResolver
from bridge.sip.timers import TimerSettings
from bridge.sip.transport import SipTransport
from bridge.slate_files import list_pictures
from bridge.workers.pool import MediaWorkerPool
from rest.app import AUTH_KEY, create_app
from rest.listener import start_rest
from rest.metrics import BridgeMetrics, add_health_routes, check_encoder
from rtp.ports import PortAllocator

log = logging.getLogger("bridge.daemon")


async def serve(config: BridgeConfig, config_path: Path | None = None) -> None:
    """Run until SIGTERM/SIGINT; then hang up every call and close every stream. SIGHUP reloads."""
    timers = TimerSettings(t1=config.sip.t1)
    sip_host, sip_port = split_host_port(config.sip.listen)
    sip_tls = client_context(config.sip.tls_ca_file, config.sip.tls_verify, "sip")
    sip = await SipTransport.listen(SipAgent(timers, inbound_policy(config.sip)), sip_host, sip_port, sip_tls)
    sip.configure_tcp(config.sip.tcp_max_connections, config.sip.tcp_max_per_source, config.sip.tcp_idle_seconds)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(ACCEPT_ERRORS.handle)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_stop_signal, stop)
    notifier = Notifier()
    resolver = SipResolver(config.sip.dns_server_addresses)
    rtmp_tls = client_context(config.rtmp.tls_ca_file, config.rtmp.tls_verify, "rtmp")
    ports = PortAllocator(*config.rtp.ports)
    calls_allowed = ensure_headroom(min(config.limits.max_calls, ports.capacity), connection_budget(config))
    slate_images = await asyncio.to_thread(list_pictures, config.video.slate_directory)
    bus = EventBus()
    history, recordings = await _open_state(config, bus)
    try:
        async with asyncio.TaskGroup() as group:
            media = MediaWorkerPool(config, ports, config.media.worker_count)
            await media.start(group)
            services = Services(
                config,
                ports,
                sip,
                timers,
                resolver,
                rtmp_tls,
                bus=bus,
                history=history,
                max_calls_by_descriptors=calls_allowed,
                media=media,
                slate_images=slate_images,
                recordings=recordings,
                connection_limits={"sip_tcp": sip.tcp_limiter},
            )
            manager = CallManager(services, group)
            manager.on_drained = stop.set  # drained: stop as on SIGTERM, exit 0
            cluster = open_cluster(services, manager)
            cluster_task = group.create_task(run_cluster(cluster, services.cluster_feed)) if cluster else None
            lag = LoopLagMonitor()
            lag_task = group.create_task(lag.run())
            recordings_task = group.create_task(recordings.run())
            webhooks = WebhookDispatcher(config, services.bus)
            webhook_task = group.create_task(webhooks.run())
            bridge_metrics = BridgeMetrics(manager, lag, services.bus)
            metrics_task = group.create_task(bridge_metrics.run())
            await check_encoder(services)
            runner = await _start_rest(config, manager, lag, bridge_metrics)
            reloader = Reloader(config_path, services, webhooks, runner.app[AUTH_KEY])
            reload_task = group.create_task(reloader.run())
            loop.add_signal_handler(signal.SIGHUP, reloader.requested.set)
            log.info("ready: REST on %s, SIP on %s:%d", config.rest.listen, *sip.local_address)
            notifier.notify("READY=1", f"STATUS={_status(manager)}")
            watchdog_task = group.create_task(notifier.watchdog(lambda: _status(manager)))
            await stop.wait()
            log.info("stopping: hanging up %d call(s)", len(manager.sessions))
            notifier.notify("STOPPING=1", f"STATUS=stopping: hanging up {len(manager.sessions)} call(s)")
            watchdog_task.cancel()
            reload_task.cancel()
            await manager.terminate_all(config.limits.shutdown_timeout)
            log.debug("stopping: calls ended; leaving the cluster")
            await leave_cluster(cluster, services.cluster_feed, cluster_task)
            log.debug("stopping: closing the REST listener")
            await runner.cleanup()
            log.debug("stopping: closing the media workers")
            await media.close()
            log.debug("stopping: last webhooks")
            await webhooks.drain(timeout=3.0)
            lag_task.cancel()
            recordings_task.cancel()
            webhook_task.cancel()
            metrics_task.cancel()
    finally:
        notifier.close()
        sip.close()
        await asyncio.to_thread(history.close)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)


async def _open_state(config: BridgeConfig, bus: EventBus) -> tuple[HistoryStore, Recordings]:
    """The call history and the recordings (repaired after a crash), opened off the event loop."""
    REDACTOR.register(*config.history.secrets())
    backend = history_backend(config.history.url, config.history.resolved_path())
    history = await asyncio.to_thread(HistoryStore, backend, config.history.retention_days, config.cluster.node)
    if history.recovered:
        recovered = history.recovered
        log.warning("%d call(s) were active when the bridge stopped; marked FAILED (bridge restarted)", recovered)
    return history, await asyncio.to_thread(open_recordings, config, history, bus)


def _on_stop_signal(stop: asyncio.Event) -> None:
    """First SIGTERM/SIGINT: graceful shutdown. A second one: exit now, without hanging up."""
    if stop.is_set():
        log.warning("second stop signal: exiting immediately; active calls are not hung up")
        _log_stuck_tasks()
        os._exit(1)
    stop.set()


def _log_stuck_tasks() -> None:
    """What the graceful stop was still waiting for (debug level: for a bug report)."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=8)
        where = " <- ".join(f"{f.f_code.co_name} ({f.f_code.co_filename}:{f.f_lineno})" for f in reversed(frames))
        log.debug("still running: %s: %s", task.get_name(), where)


def _status(manager: CallManager) -> str:
    count = len(manager.sessions)
    return f"{count} active call{'' if count == 1 else 's'}"


async def _start_rest(
    config: BridgeConfig, manager: CallManager, lag: LoopLagMonitor, bridge_metrics: BridgeMetrics
) -> web.AppRunner:
    app = create_app(manager)
    add_health_routes(app, bridge_metrics, lag)
    runner, manager.services.connection_limits["rest"] = await start_rest(app, config.rest)
    return runner
