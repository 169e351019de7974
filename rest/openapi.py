"""The OpenAPI 3.1 document of /api/v1, generated from the pydantic models, and a reference page."""

from __future__ import annotations

import html
import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from bridge import __version__
from rest.models import (
    ApiCallRequest,
    CallEvents,
    CallPage,
    CallView,
    DrainRequest,
    DtmfRequest,
    ErrorBody,
    NodeList,
    NodeView,
    Readiness,
    RecordingList,
    TicketView,
)

_REF = "#/components/schemas/{model}"
_ERRORS = {
    "400": "invalid input (the error names the field)",
    "401": "missing or invalid bearer token",
    "403": "read-only token, or a ticket that is not for this call and purpose or has expired",
    "404": "no such call",
    "409": "conflict",
    "410": "the file was deleted (retention, or after its upload)",
    "413": "body too large",
    "429": "rate limited (Retry-After)",
    "503": "at capacity or shutting down (Retry-After)",
}


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    models: list[type[BaseModel]] = [
        ApiCallRequest,
        CallView,
        CallPage,
        CallEvents,
        ErrorBody,
        NodeView,
        NodeList,
        DrainRequest,
        Readiness,
        DtmfRequest,
        RecordingList,
        TicketView,
    ]
    for model in models:
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _json(model: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}}}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _json("ErrorBody", _ERRORS[code]) for code in codes}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_CALL_ID = {"name": "callId", "in": "path", "required": True, "schema": {"type": "string"}}
_PAGING = [
    _query("limit", {"type": "integer", "minimum": 0, "maximum": 200, "default": 50}, "page size"),
    _query("offset", {"type": "integer", "minimum": 0, "default": 0}, "rows to skip"),
]
_STATE = _query(
    "state",
    {
        "type": "string",
        "enum": ["PENDING", "TRYING", "RING", "SESSION_PROGRESS", "ESTABLISHED", "HOLD", "FINISH", "FAILED", "BUSY"],
    },
    "only calls in this state",
)


def _paths() -> dict[str, Any]:
    return {
        "/api/v1/calls": {
            "post": {
                "summary": "Place a call and publish it",
                "operationId": "createCall",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": _REF.format(model="ApiCallRequest")}}},
                },
                "responses": {
                    "201": _json("CallView", "the call, starting"),
                    **_errors("400", "401", "403", "409", "413", "429", "503"),
                },
            },
            "get": {
                "summary": "Active and recent calls",
                "operationId": "listCalls",
                "parameters": [_STATE, *_PAGING],
                "responses": {"200": _json("CallPage", "a page of calls"), **_errors("400", "401", "429")},
            },
        },
        "/api/v1/calls/{callId}": {
            "get": {
                "summary": "One call (active, recent or from the history)",
                "operationId": "getCall",
                "parameters": [_CALL_ID],
                "responses": {"200": _json("CallView", "the call"), **_errors("401", "404", "429")},
            },
            "delete": {
                "summary": "Hang up",
                "operationId": "hangUp",
                "parameters": [_CALL_ID],
                "responses": {"202": _json("CallView", "hanging up"), **_errors("401", "403", "404", "409", "429")},
            },
        },
        "/api/v1/calls/{callId}/events": {
            "get": {
                "summary": "The call's timeline and SIP ladder",
                "operationId": "callEvents",
                "parameters": [_CALL_ID],
                "responses": {"200": _json("CallEvents", "timeline"), **_errors("401", "404", "429")},
            },
        },
        "/api/v1/calls/{callId}/dtmf": {
            "post": {
                "summary": "Send RFC 4733 DTMF digits into the call",
                "operationId": "sendDtmf",
                "parameters": [_CALL_ID],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": _REF.format(model="DtmfRequest")}}},
                },
                "responses": {
                    "202": {
                        "description": "queued",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"callId": {"type": "string"}, "digits": {"type": "string"}},
                                }
                            }
                        },
                    },
                    **_errors("400", "401", "403", "404", "409", "429"),
                },
            },
        },
        **_recording_paths(),
        **_node_paths(),
        "/api/v1/history": {
            "get": {
                "summary": "Stored calls, newest first",
                "operationId": "history",
                "parameters": [
                    _STATE,
                    _query("since", {"type": "string", "format": "date-time"}, "created at or after"),
                    _query("until", {"type": "string", "format": "date-time"}, "created before"),
                    *_PAGING,
                ],
                "responses": {"200": _json("CallPage", "a page of stored calls"), **_errors("400", "401", "429")},
            },
        },
        "/api/v1/events": {
            "get": {
                "summary": "Live events (Server-Sent Events)",
                "operationId": "events",
                "parameters": [
                    _query("callId", {"type": "string"}, "only this call's events"),
                    _query(
                        "stats",
                        {"type": "integer", "minimum": 1, "maximum": 60},
                        "also a calls.stats event with every active call's counters every N seconds",
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "text/event-stream of call.state, stream.state, call.event (and calls.stats)",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors("400", "401", "429"),
                },
            },
        },
        "/api/v1/whoami": {
            "get": {
                "summary": "The caller's token name and scope, and settings the web console needs",
                "operationId": "whoami",
                "responses": {
                    "200": {
                        "description": "name, scope (read, listen or full), version, playbackUrl pattern, maxCalls",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors("401", "429"),
                },
            },
        },
        "/readyz": {
            "get": {
                "summary": "Readiness",
                "operationId": "readyz",
                "security": [],
                "responses": {"200": _json("Readiness", "ready"), "503": _json("Readiness", "not ready")},
            }
        },
    }


_TICKET = _query("ticket", {"type": "string"}, "instead of the bearer token: from GET /api/v1/calls/{callId}/tickets")


def _recording_paths() -> dict[str, Any]:
    audio: dict[str, Any] = {"content": {"audio/wav": {}, "audio/mp4": {}}}
    return {
        "/api/v1/calls/{callId}/recordings": {
            "get": {
                "summary": "The call's recording files, their state and upload",
                "operationId": "listRecordings",
                "parameters": [_CALL_ID],
                "responses": {"200": _json("RecordingList", "the files"), **_errors("401", "404", "429")},
            },
        },
        "/api/v1/calls/{callId}/recordings/{name}": {
            "get": {
                "summary": "Download one recording (HTTP Range supported)",
                "operationId": "getRecording",
                "parameters": [
                    _CALL_ID,
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                    _TICKET,
                ],
                "responses": {
                    "200": {"description": "the file", **audio},
                    "206": {"description": "the range asked for", **audio},
                    **_errors("401", "403", "404", "410", "429"),
                },
            },
        },
        "/api/v1/calls/{callId}/tickets": {
            "get": {
                "summary": "A short-lived ticket for a URL that cannot carry the token (an <audio> element)",
                "operationId": "issueTicket",
                "parameters": [
                    _CALL_ID,
                    _query(
                        "purpose",
                        {"type": "string", "enum": ["listen", "recordings"], "default": "listen"},
                        "what it opens",
                    ),
                ],
                "responses": {"200": _json("TicketView", "the ticket"), **_errors("400", "401", "404", "429")},
            },
        },
        "/api/v1/calls/{callId}/listen": {
            "get": {
                "summary": "The live call's published AAC as an ADTS stream (chunked, until the call ends)",
                "operationId": "listen",
                "parameters": [_CALL_ID, _TICKET],
                "responses": {
                    "200": {"description": "audio/aac", "content": {"audio/aac": {}}},
                    **_errors("401", "403", "409", "429"),
                },
            },
        },
    }


def _node_paths() -> dict[str, Any]:
    return {
        "/api/v1/node": {
            "get": {
                "summary": "This node: its id, cluster, calls and whether it drains",
                "operationId": "showNode",
                "responses": {"200": _json("NodeView", "this node"), **_errors("401", "429")},
            },
        },
        "/api/v1/node/drain": {
            "post": {
                "summary": "Drain this node: no new calls; it exits 0 when its calls have ended or at the timeout",
                "operationId": "drainNode",
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": {"$ref": _REF.format(model="DrainRequest")}}},
                },
                "responses": {"202": _json("NodeView", "draining"), **_errors("400", "401", "403", "429")},
            },
        },
        "/api/v1/nodes": {
            "get": {
                "summary": "Every live node of the cluster (capacity, calls, headroom, draining)",
                "operationId": "listNodes",
                "responses": {"200": _json("NodeList", "the nodes"), **_errors("401", "429")},
            },
        },
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sip-rtmp-bridge",
            "version": __version__,
            "description": "Place SIP calls and publish their audio as RTMP streams.",
        },
        "paths": _paths(),
        "components": {"schemas": _schemas(), "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document())


async def reference_page(request: web.Request) -> web.Response:
    """A self-contained HTML reference (no external assets: it works on an isolated host)."""
    doc = document()
    rows = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            params = ", ".join(p["name"] for p in op.get("parameters", []))
            codes = ", ".join(op["responses"])
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['summary'])}</td><td>{html.escape(params)}</td><td>{codes}</td></tr>"
            )
    schemas = "".join(
        f"<h3 id='{name}'>{name}</h3><pre>{html.escape(_pretty(schema))}</pre>"
        for name, schema in doc["components"]["schemas"].items()
    )
    page = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>sip-rtmp-bridge API</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}td,th{padding:.3em .6em;"
        "border-bottom:1px solid #ccc;text-align:left}pre{background:#f4f4f4;padding:.6em;overflow:auto}</style>"
        f"</head><body><h1>sip-rtmp-bridge API {doc['info']['version']}</h1>"
        '<p>Authorization: <code>Bearer &lt;token&gt;</code>. Errors: <code>{"error": {"code", "message", '
        "\"field\"}}</code>. Machine-readable: <a href='/api/v1/openapi.json'>openapi.json</a>.</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th><th>responses</th></tr>"
        f"{''.join(rows)}</table><h2>Schemas</h2>{schemas}</body></html>"
    )
    return web.Response(text=page, content_type="text/html")


def _pretty(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2)


def add_openapi_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi_json)
    app.router.add_get("/api/v1/docs", reference_page)
