"""Real peers on 127.0.0.1 for the end-to-end tests, started once per module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.baresip import Baresip
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.postgres import PostgresServer
from tests.support.redis_server import RedisServer

REQUIRED = ("nginx", "kamailio", "baresip")


def _require_peers() -> None:
    missing = [name for name in REQUIRED if shutil.which(name) is None]
    if missing:
        pytest.fail(f"test peers not installed: {', '.join(missing)} (run .ci/run or make test)")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("peers")


@pytest.fixture(scope="module")
def nginx(workdir: Path) -> Iterator[NginxRtmp]:
    _require_peers()
    peer = NginxRtmp(workdir)
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def far_end(workdir: Path) -> Iterator[Baresip]:
    _require_peers()
    peer = Baresip(workdir)
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def account() -> SipAccount:
    return SipAccount()


@pytest.fixture(scope="module")
def sip_domain(workdir: Path, far_end: Baresip, account: SipAccount) -> Iterator[Kamailio]:
    peer = Kamailio(workdir, far_end.port, account)
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def daemon(workdir: Path) -> Iterator[BridgeDaemon]:
    bridge = BridgeDaemon(workdir)
    yield bridge
    bridge.stop()


@pytest.fixture(scope="module")
def redis(workdir: Path) -> Iterator[RedisServer]:
    """A redis-server for the cluster tests (keys namespaced per test by cluster.name)."""
    server = RedisServer(workdir / "redis")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.close()
