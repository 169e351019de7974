"""A bridge that is one node of a cluster on a test Redis (its advertise_url is its own REST port)."""

from __future__ import annotations

from pathlib import Path

from tests.support.daemon import BridgeDaemon
from tests.support.redis_server import RedisServer


def cluster_node(
    workdir: Path,
    node: str,
    redis: RedisServer,
    name: str,
    extra: str = "",
    env: dict[str, str] | None = None,
    token: str = "",
    history_url: str = "",
    rtp_ports: int = 20,
) -> BridgeDaemon:
    daemon = BridgeDaemon(
        workdir / node, env=env, rtp_ports=rtp_ports, start=False, token=token, history_url=history_url
    )
    daemon.config_path.write_text(
        daemon.config_path.read_text()
        + f'\n[cluster]\nredis_url = "{redis.url}"\nname = "{name}"\nnode_id = "{node}"\n'
        + f'advertise_url = "{daemon.base_url}"\nheartbeat_seconds = 0.5\nnode_ttl_seconds = 3\n'
        + redis.cluster_config
        + extra
    )
    daemon.start()
    return daemon
