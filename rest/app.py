"""The aiohttp application: /RESTCall (the original contract), /api/v1, health, events, the web console.

Errors have one shape everywhere: ``{"error": {"code", "message", "field"}}``.
"""

from __future__ import annotations

from aiohttp import web

from bridge.calls.registry import CallManager
from bridge.ops.logs import REDACTOR
from rest.api_v1 import add_api_v1_routes
from rest.auth import Authenticator
from rest.cluster_forward import close_client, forward_middleware, open_client
from rest.common import MANAGER_KEY
from rest.console import add_console_routes
from rest.errors import errors_middleware
from rest.events import add_event_routes
from rest.ingest import add_ingest_routes
from rest.listen import add_listen_routes
from rest.node import add_node_routes
from rest.openapi import add_openapi_routes
from rest.recordings import add_recording_routes
from rest.restcall import add_restcall_routes
from rest.streams import STREAM_LIMITS_KEY, StreamLimits
from rest.twiml import add_twiml_routes

AUTH_KEY = web.AppKey("auth", Authenticator)


def create_app(manager: CallManager) -> web.Application:
    config = manager.services.config
    tickets = manager.services.tickets
    auth = Authenticator(config.auth, config.rest.listen, tickets)
    auth.configure_browsers(config)
    middlewares = [errors_middleware, auth.middleware]
    if config.cluster.enabled:  # after authentication: only an authorised request is forwarded
        middlewares.append(forward_middleware)
    app = web.Application(client_max_size=config.limits.max_body_bytes, middlewares=middlewares)
    if config.cluster.enabled:
        app.on_startup.append(open_client)
        app.on_cleanup.append(close_client)
    app[MANAGER_KEY] = manager
    REDACTOR.register(*(route.secret for route in config.ingest.routes.values()))  # tokens in upgrade URLs
    app[AUTH_KEY] = auth
    app[STREAM_LIMITS_KEY] = streams = StreamLimits(lambda: manager.services.config)
    manager.services.connection_limits.update(streams=streams.streams, ingest=streams.ingest)
    add_restcall_routes(app)
    add_api_v1_routes(app)
    add_recording_routes(app)
    add_listen_routes(app, tickets)
    add_event_routes(app)
    add_openapi_routes(app)
    add_console_routes(app, config.console.enabled)
    add_ingest_routes(app)
    add_twiml_routes(app)
    add_node_routes(app)
    return app
