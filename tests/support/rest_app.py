"""The REST app for tests of the API: over a real CallManager, SIP socket and media worker
(:func:`bridge_client`), or over the configuration alone (:func:`api_client`, for what is
answered before any call exists); and the REST contract's request body as clients send it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bridge.calls.registry import CallManager
from bridge.calls.services import Services
from bridge.config import load_config
from bridge.sip.agent import SipAgent
from bridge.sip.transport import SipTransport
from bridge.workers.pool import MediaWorkerPool
from rest.app import create_app
from rtp.ports import PortAllocator

REPO = Path(__file__).resolve().parents[2]


def body(**changes: Any) -> dict[str, Any]:
    connection = {
        "sipLogin": "bridge",
        "sipPassword": "pw-unit-secret",
        "sipAuthenticationName": "bridge",
        "sipDomain": "127.0.0.1",
        "sipPort": "5999",
        "sipRegisterRequired": "false",
        "appKey": "k",
    }
    connection.update(changes.pop("connection", {}))
    data = {
        "callId": "c1",
        "callee": "uas",
        "rtmpUrl": "rtmp://127.0.0.1:1/live",
        "rtmpStream": "s1",
        "hasAudio": "false",
        "hasVideo": "true",
        "connection": connection,
    }
    data.update(changes)
    return data


@contextlib.asynccontextmanager
async def api_client() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    """The REST app over a CallManager with no SIP transport and no media worker: enough for every
    answer given before a call starts (400s, 404s, authentication); a call that starts fails."""
    config = load_config(REPO / "conf" / "bridge.toml", environ={})
    services = Services(config, PortAllocator(*config.rtp.ports))
    async with asyncio.TaskGroup() as group:
        manager = CallManager(services, group)
        async with TestClient(TestServer(create_app(manager))) as test_client:
            yield test_client
        await manager.terminate_all(2.0)


@contextlib.asynccontextmanager
async def bridge_client(ports: tuple[int, int], **environ: str) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    """The REST app over a real CallManager and SIP socket; every call is hung up on exit."""
    config = load_config(REPO / "conf" / "bridge.toml", environ={"BRIDGE_SIP__LISTEN": "127.0.0.1:0", **environ})
    sip = await SipTransport.listen(SipAgent(), "127.0.0.1", 0)
    services = Services(config, PortAllocator(*ports), sip)
    try:
        async with asyncio.TaskGroup() as group:
            services.media = MediaWorkerPool(config, services.ports, 1)
            await services.media.start(group)
            manager = CallManager(services, group)
            async with TestClient(TestServer(create_app(manager))) as test_client:
                yield test_client
            await manager.terminate_all(2.0)
            await services.media.close()
    finally:
        sip.close()
