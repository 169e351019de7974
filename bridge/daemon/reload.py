"""SIGHUP: re-read the config, apply what can change under live calls, refuse the rest.

Settings read when a call starts or a request arrives (limits, tokens, webhook apps, log
level, media output and RTMP/SIP behaviour for new calls) take effect at once. Settings
bound into sockets or objects made at start-up (listen addresses, the RTP port range,
TLS trust, DNS servers, SIP timers, the history file) keep their running value and the
change is logged as needing a restart. Active calls are never touched.

Only key names are logged, never values: tokens, webhook secrets and app URLs stay out of logs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.calls.services import Services
from bridge.config import BridgeConfig, ConfigError, SipConfig, load_config
from bridge.daemon.fdlimit import connection_budget, ensure_headroom
from bridge.ops.webhooks import WebhookDispatcher
from bridge.sip.inbound import InboundPolicy, parse_networks
from bridge.slate_files import list_pictures
from rest.auth import Authenticator
from rest.metrics import check_encoder

log = logging.getLogger("bridge.reload")

RESTART_ONLY = frozenset(
    {
        "rest.listen",
        "rest.keepalive_seconds",
        "rest.max_connections",
        "limits.max_streams",  # budgeted in the descriptor limit at start-up
        "limits.max_streams_per_token",
        "sip.listen",
        "sip.t1",
        "sip.tls_ca_file",
        "sip.tls_verify",
        "sip.dns_servers",
        "rtp.port_range",
        "media.workers",
        "console.enabled",
        "rtmp.tls_ca_file",
        "rtmp.tls_verify",
        "history.path",
        "history.url",
        "history.retention_days",
        "recording.directory",
        "cluster.redis_url",
        "cluster.name",
        "cluster.node_id",
        "cluster.advertise_url",
        "cluster.heartbeat_seconds",
        "cluster.node_ttl_seconds",
    }
)


@dataclass
class ReloadPlan:
    """The config to run with from now on, and which changed keys were applied or refused."""

    config: BridgeConfig
    applied: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if not self.applied and not self.refused:
            return "config reloaded: nothing changed"
        parts = [f"applied {', '.join(self.applied)}" if self.applied else "nothing applied"]
        if self.refused:
            parts.append(
                f"NOT applied (bound at start-up; restart the service to change them): {', '.join(self.refused)}"
            )
        return "config reloaded: " + "; ".join(parts)


def plan_reload(running: BridgeConfig, loaded: BridgeConfig) -> ReloadPlan:
    """Merge ``loaded`` over ``running``, keeping the running value of every restart-only key."""
    current = running.model_dump()
    merged = loaded.model_dump()
    plan = ReloadPlan(config=running)
    for section, name in _changed_keys(current, merged):
        key = f"{section}.{name}" if name else section
        if key in RESTART_ONLY:
            merged[section][name] = current[section][name]
            plan.refused.append(key)
        else:
            plan.applied.append(key)
    plan.config = BridgeConfig.model_validate(merged)
    return plan


def _changed_keys(current: dict[str, Any], merged: dict[str, Any]) -> list[tuple[str, str]]:
    """(section, key) for every changed setting; ``apps`` (a table of tables) changes as a whole."""
    changed = []
    for section, values in merged.items():
        before = current.get(section)
        if section == "apps" or not isinstance(values, dict) or not isinstance(before, dict):
            if values != before:
                changed.append((section, ""))
            continue
        changed.extend((section, key) for key, value in values.items() if before.get(key) != value)
    return sorted(changed)


class Reloader:
    """Waits for SIGHUP (``requested``), re-reads the config file off the loop and applies the plan."""

    def __init__(self, path: Path | None, services: Services, webhooks: WebhookDispatcher, auth: Authenticator) -> None:
        self.requested = asyncio.Event()
        self._path = path
        self._services = services
        self._webhooks = webhooks
        self._auth = auth

    async def run(self) -> None:
        while True:
            await self.requested.wait()
            self.requested.clear()
            await self.reload()

    async def reload(self) -> ReloadPlan | None:
        try:
            loaded = await asyncio.to_thread(load_config, self._path)
        except ConfigError as exc:
            log.error("config reload refused, the running config stays in force: %s", exc)
            return None
        plan = plan_reload(self._services.config, loaded)
        self._services.config = plan.config
        self._webhooks.config = plan.config
        self._auth.configure(plan.config.auth)
        self._auth.configure_browsers(plan.config)
        logging.getLogger().setLevel(plan.config.log.level.upper())
        if self._services.media is not None:
            self._services.media.reconfigure(plan.config)
        policy = inbound_policy(plan.config.sip)
        policy.drops = self._services.signalling().agent.policy.drops  # the counters go on
        self._services.signalling().agent.policy = policy
        sip = plan.config.sip
        self._services.signalling().configure_tcp(sip.tcp_max_connections, sip.tcp_max_per_source, sip.tcp_idle_seconds)
        if self._services.recordings is not None:
            self._services.recordings.configure(plan.config.recording)
        self._services.slate_images = await asyncio.to_thread(list_pictures, plan.config.video.slate_directory)
        if "limits.max_calls" in plan.applied:
            wanted = min(plan.config.limits.max_calls, self._services.ports.capacity)
            self._services.max_calls_by_descriptors = ensure_headroom(wanted, connection_budget(plan.config))
        if any(key.startswith("media.") for key in plan.applied):
            await check_encoder(self._services)
        log.log(logging.WARNING if plan.refused else logging.INFO, "%s", plan.describe())
        return plan


def inbound_policy(sip: SipConfig) -> InboundPolicy:
    """What the SIP port does with strangers' traffic, from ``[sip]`` (bridge.sip.inbound)."""
    rate = sip.out_of_dialog_rate
    return InboundPolicy(
        sip.unknown_requests, parse_networks(sip.trusted_sources), rate, max(1, int(rate * 2)), sip.max_message_bytes
    )
