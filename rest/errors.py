"""One error shape everywhere: ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    body = {"error": {"code": code, "message": message, "field": field}}
    return web.json_response(body, status=status)


class RequestError(Exception):
    """A client error to report with :func:`error_response`."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.response = error_response(status, code, message, field)
        for name, value in (headers or {}).items():
            self.response.headers[name] = value


_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """RequestError and aiohttp's own HTTP errors become the JSON shape."""
    try:
        return await handler(request)
    except RequestError as exc:
        return exc.response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _CODES.get(exc.status, "http_error")
        message = exc.reason if exc.status != 404 else f"no such resource: {request.method} {request.path}"
        response = error_response(exc.status, code, message)
        for name in ("Allow", "Retry-After"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
