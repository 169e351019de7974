"""The web console's server side: static files with a strict CSP, whoami, SSE stats, config."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from bridge.config import ConfigError, load_config
from rest.auth import hash_token
from rest.console import STATIC_DIR, load_files
from tests.support.ports import free_even_range
from tests.support.rest_app import REPO, body, bridge_client


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with bridge_client(free_even_range(60)) as test_client:
        yield test_client


TOKEN, READ = "unit-console-token-0123456789", "unit-console-read-0123456789"
TOKENS = json.dumps(
    [{"sha256": hash_token(TOKEN), "scope": "full", "name": "ops"}, {"sha256": hash_token(READ), "scope": "read"}]
)


async def test_page_and_modules_are_served_without_a_token_with_a_strict_csp() -> None:
    async with bridge_client(free_even_range(20), BRIDGE_AUTH__REQUIRED="always", BRIDGE_AUTH__TOKENS=TOKENS) as client:
        page = await client.get("/")
        assert page.status == 200 and page.content_type == "text/html"
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        html = await page.text()
        for reference in re.findall(r'(?:src|href)="(/[^"]*)"', html):
            asset = await client.get(reference)
            assert asset.status == 200, reference
        script = await client.get("/console/js/app.js")
        assert script.content_type == "text/javascript"
        assert (await client.get("/api/v1/calls")).status == 401  # the data still needs the token


@pytest.mark.parametrize("path", ["/console/nope.js", "/console/../console.py", "/console/%2e%2e/app.py"])
async def test_only_console_files_are_served(client: TestClient, path: str) -> None:  # type: ignore[type-arg]
    assert (await client.get(path)).status == 404


def test_every_page_reference_is_a_packaged_file_and_nothing_comes_from_elsewhere() -> None:
    files = load_files()
    assert {"index.html", "console.css", "js/app.js"} <= files.keys()
    html = files["index.html"][0].decode()
    assert all(ref.startswith("/") for ref in re.findall(r'(?:src|href)="([^"#]+)"', html))
    assert "url(" not in files["console.css"][0].decode() and "@import" not in files["console.css"][0].decode()
    for module in (STATIC_DIR / "js").glob("*.js"):
        source = module.read_text()
        assert not re.search(r'(?:from|import\(|fetch\()\s*["\'`]https?:', source), module.name
        for imported in re.findall(r'from "\./([^"]+)"', source):
            assert f"js/{imported}" in files, f"{module.name} imports missing {imported}"


async def test_whoami_tells_the_scope_and_the_playback_pattern() -> None:
    environ = {
        "BRIDGE_AUTH__REQUIRED": "always",
        "BRIDGE_AUTH__TOKENS": TOKENS,
        "BRIDGE_CONSOLE__PLAYBACK_URL": "https://cdn.example.com/hls/{stream}.m3u8",
    }
    async with bridge_client(free_even_range(20), **environ) as client:
        full = await (await client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {TOKEN}"})).json()
        assert full["name"] == "ops" and full["scope"] == "full"
        assert full["playbackUrl"] == "https://cdn.example.com/hls/{stream}.m3u8"
        read = await (await client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {READ}"})).json()
        assert read["scope"] == "read"
        wrong = await client.get("/api/v1/whoami", headers={"Authorization": "Bearer wrong"})
        assert wrong.status == 401 and (await wrong.json())["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("value", ["0", "61", "x", "1.5"])
async def test_stats_interval_is_checked(client: TestClient, value: str) -> None:  # type: ignore[type-arg]
    reply = await client.get(f"/api/v1/events?stats={value}")
    assert reply.status == 400 and "stats must be" in (await reply.json())["error"]["message"]


async def test_event_stream_sends_the_counters_of_active_calls(client: TestClient) -> None:  # type: ignore[type-arg]
    created = await client.post("/api/v1/calls", json=body(callId="stats-1"))
    assert created.status == 201
    reply = await client.get("/api/v1/events?stats=1")
    received = b""
    while b"event: calls.stats" not in received or not received.endswith(b"\n\n"):
        received += await reply.content.readany()
    block = received[received.index(b"event: calls.stats") :].split(b"\n\n")[0]
    payload = json.loads(block.split(b"data: ", 1)[1])
    assert payload["type"] == "calls.stats"
    (entry,) = [c for c in payload["calls"] if c["callId"] == "stats-1"]
    assert {"packets", "lost", "jitterMs", "levelDbfs", "reconnects"} <= entry["counters"].keys()
    assert "sipPassword" not in block.decode() and "pw-unit-secret" not in block.decode()
    reply.close()


@pytest.mark.parametrize(
    ("value", "problem"),
    [("https://cdn/{bogus}.m3u8", "unknown placeholder {bogus}"), ("cdn/{stream}", "must start with http")],
)
def test_playback_pattern_is_checked_at_load(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_config(REPO / "conf" / "bridge.toml", environ={"BRIDGE_CONSOLE__PLAYBACK_URL": value})
