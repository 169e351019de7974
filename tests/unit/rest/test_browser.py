"""What a browser may do: Host names (DNS rebinding), Origin and Fetch Metadata, JSON on /api/v1 writes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rest.browser import BrowserGuard, host_of


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("127.0.0.1:9091", "127.0.0.1"),
        ("[::1]:9091", "::1"),
        ("LocalHost", "localhost"),
        ("evil.example:19091", "evil.example"),
        ("a b", None),
        ("127.0.0.1:9091@evil", None),
        ("", None),
    ],
)
def test_host_of(header: str, host: str | None) -> None:
    assert host_of(header) == host


def test_wildcard_listener_takes_addresses_but_not_names() -> None:
    guard = BrowserGuard("0.0.0.0", ["bridge.example.com"], [])
    assert guard.host_allowed("10.1.2.3") and guard.host_allowed("bridge.example.com")
    assert not guard.host_allowed("evil.example")
    assert not BrowserGuard("127.0.0.1", [], []).host_allowed("10.1.2.3")


SEEN: list[str] = []  # the paths that reached the handler


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    guard = BrowserGuard("127.0.0.1", ["bridge.example.com"], ["https://ops.example.com"])
    seen = SEEN
    seen.clear()

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[guard.middleware])
    app.router.add_route("*", "/{tail:.*}", handler)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        # the attacks of the review: a text/plain form POST from another origin, a rebound name
        ("POST", "/RESTCall/call", {"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403),
        ("POST", "/api/v1/node/drain", {"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403),
        ("GET", "/api/v1/calls", {"Host": "evil.example:19091"}, 421),
        ("GET", "/api/v1/calls", {"Origin": "null"}, 403),
        ("GET", "/api/v1/calls", {"Sec-Fetch-Site": "cross-site"}, 403),
        ("POST", "/api/v1/calls", {"Content-Type": "text/plain"}, 415),
        ("POST", "/api/v1/calls", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
        # what stays allowed: curl and scripts, the console itself, configured names and origins
        ("POST", "/RESTCall/terminate", {"Content-Type": "application/x-www-form-urlencoded"}, 200),
        ("POST", "/RESTCall/call", {}, 200),
        ("POST", "/api/v1/calls", {"Content-Type": "application/json; charset=utf-8"}, 200),
        ("GET", "/api/v1/calls", {"Host": "localhost:9091"}, 200),
        ("GET", "/api/v1/calls", {"Host": "bridge.example.com"}, 200),
        ("POST", "/api/v1/calls", {"Origin": "https://ops.example.com", "Content-Type": "application/json"}, 200),
        ("GET", "/", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}, 200),
    ],
)
async def test_requests(
    client: TestClient,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,  # type: ignore[type-arg]
) -> None:
    reply = await client.request(method, path, data=b'{"callId": "x"}', headers=headers)
    assert reply.status == status
    assert (path in SEEN) is (status == 200)  # a refused request never reached the handler


async def test_console_origin_is_its_own(client: TestClient) -> None:  # type: ignore[type-arg]
    own = f"http://127.0.0.1:{client.port}"
    assert (await client.post("/api/v1/calls", json={}, headers={"Origin": own})).status == 200
    other_port = f"http://127.0.0.1:{client.port + 1}"  # another server on the same host is another origin
    assert (await client.post("/api/v1/calls", json={}, headers={"Origin": other_port})).status == 403


async def test_bodyless_write_needs_no_content_type(client: TestClient) -> None:  # type: ignore[type-arg]
    assert (await client.post("/api/v1/calls/x/hangup")).status == 200
