"""The REST contract: string booleans/ports, field errors, 404, and no secrets in replies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from rest.common import MANAGER_KEY
from tests.support.ports import free_even_range
from tests.support.rest_app import api_client, body, bridge_client


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with bridge_client(free_even_range(100)) as test_client:
        yield test_client


@pytest.fixture
async def api() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    """No SIP socket, no media worker: a 400 needs neither."""
    async with api_client() as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"callee": ""}, "callee"),
        ({"hasAudio": "maybe"}, "hasAudio"),
        ({"connection": {"sipPort": "50x"}}, "connection.sipPort"),
        ({"connection": {"sipPort": 70000}}, "connection.sipPort"),
        ({"connection": {"sipLogin": "a\r\nVia: x"}}, "connection.sipLogin"),
        ({"connection": {"sipDomain": "bad domain"}}, "connection.sipDomain"),
        ({"rtmpUrl": "http://cdn/live"}, "rtmpUrl"),
        ({"rtmpStream": ""}, "rtmpStream"),
        ({"connection": {"sipRegisterRequired": "perhaps"}}, "connection.sipRegisterRequired"),
        # security review 2026-12-07: an IPv6 zone carrying SIP syntax (finding 5), SSRF literals (4)
        ({"callee": "fe80::1%1>;tag=forged, <sip:evil.example>;x="}, "callee"),
        ({"connection": {"sipDomain": "fe80::1%1>;tag=forged"}}, "connection.sipDomain"),
        ({"connection": {"sipDomain": "169.254.169.254"}}, "connection.sipDomain"),
        ({"connection": {"sipDomain": "[::ffff:169.254.169.254]"}}, "connection.sipDomain"),
        ({"connection": {"sipDomain": "[fe80::1]"}}, "connection.sipDomain"),
        ({"rtmpUrl": "rtmp://169.254.169.254/live"}, "rtmpUrl"),
        ({"rtmpUrl": "rtmp://[fd00:ec2::254]:1935/live"}, "rtmpUrl"),
    ],
)
async def test_bad_fields_are_400_naming_the_field(api: TestClient, changes: dict[str, Any], field: str) -> None:  # type: ignore[type-arg]
    reply = await api.post("/RESTCall/call", json=body(**changes))
    data = await reply.json()
    assert reply.status == 400, data
    assert data["error"]["field"] == field and data["error"]["message"]


async def test_missing_field_and_bad_json(api: TestClient) -> None:  # type: ignore[type-arg]
    data = body()
    del data["connection"]["sipDomain"]
    reply = await api.post("/RESTCall/call", json=data)
    assert reply.status == 400 and (await reply.json())["error"]["field"] == "connection.sipDomain"
    reply = await api.post("/RESTCall/call", data=b"{not json")
    assert reply.status == 400 and (await reply.json())["error"]["code"] == "invalid_json"
    for path in ("/RESTCall/call", "/api/v1/calls"):  # review finding 11: a RecursionError and a 500 before
        reply = await api.post(path, data=b"[" * 40_000, headers={"Content-Type": "application/json"})
        assert reply.status == 400 and (await reply.json())["error"]["code"] == "invalid_json"


async def test_string_booleans_and_ports_are_accepted_and_password_never_returned(client: TestClient) -> None:  # type: ignore[type-arg]
    reply = await client.post("/RESTCall/call", json=body())
    data = await reply.json()
    assert reply.status == 200, data
    assert data["hasAudio"] is False and data["hasVideo"] is True and data["state"] in ("PENDING", "TRYING")
    listing = await (await client.get("/RESTCall/calls")).text()
    single = await (await client.get("/RESTCall/calls/c1")).text()
    for text in (str(data), listing, single):
        assert "pw-unit-secret" not in text
    reply = await client.post("/RESTCall/call", json=body())
    assert reply.status == 409


async def test_no_new_calls_while_shutting_down(client: TestClient) -> None:  # type: ignore[type-arg]
    assert (await client.post("/RESTCall/call", json=body())).status == 200
    manager = client.server.app[MANAGER_KEY]
    await manager.terminate_all(2.0)
    reply = await client.post("/RESTCall/call", json=body(callId="c2", rtmpStream="s2"))
    error = (await reply.json())["error"]
    assert reply.status == 503 and reply.headers["Retry-After"] == "5"
    assert "shutting down" in error["message"] and error["code"] == "shutting_down"
    assert manager.sessions == {}


async def test_unknown_call_is_404(client: TestClient) -> None:  # type: ignore[type-arg]
    reply = await client.post("/RESTCall/terminate", json={"callId": "nope"})
    assert reply.status == 404 and (await reply.json())["error"]["field"] == "callId"
    reply = await client.get("/RESTCall/calls/nope")
    assert reply.status == 404


@pytest.fixture
async def one_call_client() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with bridge_client(free_even_range(100), BRIDGE_LIMITS__MAX_CALLS="1") as test_client:
        yield test_client


async def test_at_capacity_is_503_with_retry_after(one_call_client: TestClient) -> None:  # type: ignore[type-arg]
    assert (await one_call_client.post("/RESTCall/call", json=body())).status == 200
    reply = await one_call_client.post("/api/v1/calls", json=body(callId="c2", rtmpStream="s2"))
    assert reply.status == 503 and reply.headers["Retry-After"] == "5"
    assert (await reply.json())["error"]["code"] == "at_capacity"
    cors = await one_call_client.get("/RESTCall/calls", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in cors.headers  # CORS is off unless configured


async def test_rtp_port_exhaustion_is_503_naming_the_range() -> None:
    first, last = free_even_range(2)
    async with bridge_client((first, last)) as client:  # one RTP/RTCP pair
        assert (await client.post("/RESTCall/call", json=body())).status == 200
        reply = await client.post("/RESTCall/call", json=body(callId="c2", rtmpStream="s2"))
        error = (await reply.json())["error"]
        assert reply.status == 503 and error["code"] == "at_capacity"
        assert f"rtp.port_range {first}-{last} holds 1 pairs" in error["message"]


async def test_no_cpu_headroom_is_503_naming_the_limit() -> None:
    async with bridge_client(free_even_range(100), BRIDGE_LIMITS__MAX_WORKER_CPU="0.000001") as client:
        reply = await client.post("/api/v1/calls", json=body())
        error = (await reply.json())["error"]
        assert reply.status == 503 and reply.headers["Retry-After"] == "5" and error["code"] == "at_capacity"
        assert "no CPU headroom" in error["message"] and "limits.max_worker_cpu" in error["message"]
        assert client.server.app[MANAGER_KEY].sessions == {}  # refused before anything started


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"record": {"formats": ["wav"]}, "recording": True}, "recording"),
        ({"connection": {"sipProxy": "x"}}, "connection.sipProxy"),
        ({"output": {"codec": "aac", "bitRate": 64000}}, "output.bitRate"),
        ({"record": {"formats": ["wav"], "upload": True}}, "record.upload"),
        ({"record": {"formats": ["mp3"]}}, "record.formats.0"),
    ],
)
async def test_v1_refuses_unknown_fields_naming_them(client: TestClient, changes: dict[str, Any], field: str) -> None:  # type: ignore[type-arg]
    """A client that misspells a field must not believe the call does what it asked (e.g. records)."""
    reply = await client.post("/api/v1/calls", json=body(**changes))
    error = (await reply.json())["error"]
    assert reply.status == 400 and error["field"] == field, error
    assert "unknown field" in error["message"] or field.startswith("record.formats")
    assert (await client.get("/api/v1/calls")).status == 200 and client.server.app[MANAGER_KEY].sessions == {}


async def test_restcall_stays_lenient_about_unknown_fields(client: TestClient) -> None:  # type: ignore[type-arg]
    data = body(clientTag="crm-7", connection={"sipProxy": "ignored"}, output={"codec": "aac", "extra": 1})
    reply = await client.post("/RESTCall/call", json=data)
    assert reply.status == 200, await reply.text()
    reply = await client.post("/RESTCall/terminate", json={"callId": "c1", "reason": "ignored too"})
    assert reply.status == 200


async def test_event_streams_are_capped_per_token() -> None:
    """limits.max_streams_per_token: the third SSE stream of one caller is a 429 (review finding 2)."""
    async with bridge_client(free_even_range(20), BRIDGE_LIMITS__MAX_STREAMS_PER_TOKEN="2") as client:
        first = await client.get("/api/v1/events")
        second = await client.get("/api/v1/events")
        third = await client.get("/api/v1/events")
        assert (first.status, second.status, third.status) == (200, 200, 429)
        assert (await third.json())["error"]["code"] == "too_many_streams"
        first.close()
        for _ in range(50):  # a stream that ended gives its place back (once the server sees it end)
            fourth = await client.get("/api/v1/events")
            if fourth.status == 200:
                break
            await asyncio.sleep(0.1)
        assert fourth.status == 200
        second.close()
        fourth.close()
