"""The HTTP upload URL keeps its template's fixed prefix whatever a callId holds (review finding 3).

Judged by what a real HTTP server (aiohttp on loopback) received, after aiohttp's client has
normalised the URL as it sends it."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge.recording.config import UploadConfig
from bridge.recording.targets import HttpPutTarget, UploadFailed, UploadFile

RECEIVED: list[str] = []


@pytest.fixture
async def store() -> AsyncIterator[TestServer]:
    async def put(request: web.Request) -> web.Response:
        RECEIVED.append(request.raw_path)
        await request.read()
        return web.Response(status=201)

    RECEIVED.clear()
    app = web.Application()
    app.router.add_route("PUT", "/{tail:.*}", put)
    async with TestServer(app, host="127.0.0.1") as server:
        yield server


def _file(tmp_path: Path, call_id: str, relative: str = "2026-12-07/call/call-mixed.wav") -> UploadFile:
    path = tmp_path / "f.wav"
    path.write_bytes(b"RIFF0000WAVE")
    md5 = hashlib.md5(path.read_bytes()).digest()
    placeholders = {"callId": call_id, "appKey": "app", "date": "2026-12-07", "track": "mixed", "ext": "wav"}
    return UploadFile(path, relative, "wav", path.stat().st_size, md5, placeholders)


@pytest.mark.parametrize(
    "call_id",
    ["../../../escaped/x", "..", "a/../../b", "%2e%2e/x", "..\\..\\x", "x?y#z"],
)
async def test_a_call_id_cannot_leave_the_tenants_folder(store: TestServer, tmp_path: Path, call_id: str) -> None:
    config = UploadConfig(kind="http", http_url=f"http://127.0.0.1:{store.port}/tenant-a/{{callId}}/{{name}}")
    try:
        await HttpPutTarget(config).put(_file(tmp_path, call_id))
    except UploadFailed:
        assert call_id == ".."  # the one value that is itself a dot segment is refused, not sent
        return
    assert len(RECEIVED) == 1 and RECEIVED[0].startswith("/tenant-a/")
    assert RECEIVED[0].count("/") == 3  # /tenant-a/<callId as one segment>/<name>


async def test_path_placeholder_keeps_its_folders(store: TestServer, tmp_path: Path) -> None:
    config = UploadConfig(kind="http", http_url=f"http://127.0.0.1:{store.port}/rec/{{path}}?sig=s")
    await HttpPutTarget(config).put(_file(tmp_path, "c1"))
    assert RECEIVED == ["/rec/2026-12-07/call/call-mixed.wav?sig=s"]


async def test_a_dot_segment_in_path_is_refused(store: TestServer, tmp_path: Path) -> None:
    config = UploadConfig(kind="http", http_url=f"http://127.0.0.1:{store.port}/rec/{{path}}")
    with pytest.raises(UploadFailed):
        await HttpPutTarget(config).put(_file(tmp_path, "c1", relative="../../etc/x.wav"))
    assert RECEIVED == []
