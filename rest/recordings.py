"""``/api/v1/calls/{callId}/recordings``: a call's recording files, and each file for download.

The list merges what the live call's media worker reported with the stored rows (upload
state, retention); an ended call's come from the history. A file is served with HTTP Range
support (players seek), to the caller's token or to a ticket (``?ticket=``, rest/tickets.py)
for an ``<audio>`` element, which cannot send an Authorization header.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bridge.calls.registry import CallManager
from rest.access import check_call_app
from rest.common import MANAGER_KEY
from rest.errors import RequestError

CONTENT_TYPES = {"wav": "audio/wav", "wav-ulaw": "audio/wav", "m4a": "audio/mp4"}
SHOWN = ("name", "format", "track", "durationSeconds", "bytes", "state", "reason")


async def _call_created(manager: CallManager, call_id: str) -> str:
    """The creation time of the call's latest instance (a callId may be used again later)."""
    session = manager.find(call_id)
    if session is not None:
        return session.created_at.isoformat()
    history = manager.services.history
    view = await asyncio.to_thread(history.find, call_id) if history is not None else None
    if view is None:
        raise RequestError(404, "not_found", f"no call {call_id!r} is active or in the history", "callId")
    return str(view["createdAt"])


async def call_recordings(manager: CallManager, call_id: str) -> list[dict[str, Any]]:
    """Every file of the call, by relative path: the live notes overlaid with the stored rows."""
    created = await _call_created(manager, call_id)
    recordings = manager.services.recordings
    files: dict[str, dict[str, Any]] = {}
    session = manager.find(call_id)
    if session is not None and session.created_at.isoformat() == created:
        files = {path: dict(note) for path, note in session.recordings.items()}
    if recordings is not None and recordings.store is not None:
        for row in await asyncio.to_thread(recordings.store.for_call, call_id, created):
            files[row["path"]] = merged_file(files.get(row["path"], {}), {**row, "durationSeconds": row["duration"]})
    return list(files.values())


def merged_file(live: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """One file's view from the worker's last note and the stored row, the newer winning.

    The note is newer while the file is written, and also just after it ended, until the row is
    updated (the row still says ``recording``, with the size noted when the file opened); after
    that the row is (uploads, retention, repairs change it, never the note).
    """
    if live.get("state") == "recording" or (live and stored.get("state") == "recording"):
        return {**stored, **live}
    return {**live, **stored}


async def list_recordings(request: web.Request) -> web.Response:
    call_id = request.match_info["callId"]
    await check_call_app(request, call_id)
    files = await call_recordings(request.app[MANAGER_KEY], call_id)
    shown = []
    for file in files:
        entry = {key: file.get(key) for key in SHOWN}
        entry["url"] = f"/api/v1/calls/{call_id}/recordings/{file['name']}"
        entry["upload"] = file.get("upload") or None
        shown.append(entry)
    return web.json_response({"callId": call_id, "recordings": shown})


async def download_recording(request: web.Request) -> web.StreamResponse:
    call_id, name = request.match_info["callId"], request.match_info["name"]
    await check_call_app(request, call_id)
    manager = request.app[MANAGER_KEY]
    files = await call_recordings(manager, call_id)
    found = next((file for file in files if file.get("name") == name), None)
    if found is None or manager.services.recordings is None:
        raise RequestError(404, "not_found", f"call {call_id!r} has no recording {name!r}", "name")
    if found.get("state") == "deleted":
        raise RequestError(410, "gone", f"recording {name!r} was deleted: {found.get('reason', '')}", "name")
    path = manager.services.recordings.file_path(found["path"])
    if not await asyncio.to_thread(path.is_file):
        raise RequestError(410, "gone", f"recording {name!r} is no longer on this host", "name")
    response = web.FileResponse(path, headers={"Content-Disposition": f'inline; filename="{name}"'})
    response.content_type = CONTENT_TYPES.get(str(found.get("format")), "application/octet-stream")
    response.headers["Cache-Control"] = "no-store"
    return response


def add_recording_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/calls/{callId}/recordings", list_recordings)
    app.router.add_get("/api/v1/calls/{callId}/recordings/{name}", download_recording)
