"""The web console: static files at ``/`` and ``/console/…``, and ``GET /api/v1/whoami``.

Everything the page loads comes from the daemon itself (no CDN), so it works on an
isolated host. The page holds no secrets: it asks for an API token, keeps it in
sessionStorage and sends it as a bearer token on every API call, like any client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from bridge import __version__
from rest.auth import CALLER_KEY, CONSOLE_PREFIX
from rest.common import MANAGER_KEY

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# Only the daemon's own scripts, styles and API; nothing inline, nothing from elsewhere. Media may
# also come from blob: URLs: the live listen player is a MediaSource fed from the daemon's stream.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def load_files(root: Path = STATIC_DIR) -> dict[str, tuple[bytes, str]]:
    """Every console file by its path under ``root``, read once at start-up (no disk I/O per request)."""
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(root.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is not None and path.is_file():
            files[path.relative_to(root).as_posix()] = (path.read_bytes(), content_type)
    return files


FILES_KEY = web.AppKey("console_files", dict)


def _serve(request: web.Request, name: str) -> web.Response:
    found = request.app[FILES_KEY].get(name)
    if found is None:
        raise web.HTTPNotFound(text="no such console file")
    body, content_type = found
    return web.Response(body=body, content_type=content_type, headers=SECURITY_HEADERS)


async def index(request: web.Request) -> web.Response:
    return _serve(request, "index.html")


async def asset(request: web.Request) -> web.Response:
    return _serve(request, request.match_info["path"])


async def whoami(request: web.Request) -> web.Response:
    """Who the token belongs to and what it may do, plus what the console needs to know."""
    caller = request[CALLER_KEY]  # set by the auth middleware (anonymous on an open loopback listener)
    config = request.app[MANAGER_KEY].services.config
    body: dict[str, Any] = {
        "name": caller.name,
        "scope": caller.scope,
        "version": __version__,
        "playbackUrl": config.console.playback_url,
        "maxCalls": config.limits.max_calls,
    }
    return web.json_response(body)


def add_console_routes(app: web.Application, enabled: bool) -> None:
    app.router.add_get("/api/v1/whoami", whoami)
    if enabled:
        app[FILES_KEY] = load_files()
        app.router.add_get("/", index)
        app.router.add_get(CONSOLE_PREFIX + "{path:.+}", asset)
