"""``POST /twiml/<route>``: the TwiML that makes Twilio stream a call to ``/ingest/<route>``.

Point a Twilio number's voice webhook here. The request's ``X-Twilio-Signature`` is checked
over the URL and the form parameters (403 when wrong or missing); the answer is
``<Response><Start><Stream url="wss://…/ingest/<route>">…</Stream></Start><Pause length="…"/></Response>``
(``twiml = "start"``: the call goes on while it streams) or ``<Connect><Stream>`` (``"connect"``),
built with an XML library. Query parameters of this URL, and the caller's From/To, become
the stream's ``<Parameter>``s (custom parameters, usable as placeholders and as ``callId``).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

from aiohttp import web

from bridge.ingest.signature import twilio_signature_valid
from rest.common import MANAGER_KEY
from rest.errors import error_response
from rest.ingest import public_url

log = logging.getLogger("bridge.ingest")
FORWARDED = {"From": "from", "To": "to"}  # voice webhook parameters passed on to the stream


async def twiml(request: web.Request) -> web.StreamResponse:
    manager = request.app[MANAGER_KEY]
    name = request.match_info["route"]
    route = manager.services.config.ingest.routes.get(name)
    if route is None or route.protocol != "twilio":
        return error_response(404, "not_found", f"no Twilio ingest route {name!r} ([ingest.routes.{name}])")
    form = await request.post()
    pairs = [(key, str(value)) for key, value in form.items()]
    signature = request.headers.get("X-Twilio-Signature", "")
    if not twilio_signature_valid(route.secret, public_url(request, http=True), signature, pairs):
        log.warning("twiml route %s: refused a request from %s: bad or missing signature", name, request.remote)
        return error_response(403, "forbidden", "X-Twilio-Signature is missing or wrong")
    parameters = dict(request.query)
    parameters.update({FORWARDED[key]: value for key, value in pairs if key in FORWARDED})
    stream_url = request.app[MANAGER_KEY].services.config.ingest.public_base(request.host, request.secure)
    body = build_twiml(f"{stream_url}/ingest/{name}", parameters, route.twiml, route.twiml_pause_seconds)
    return web.Response(body=body, content_type="application/xml", charset="utf-8")


def build_twiml(stream_url: str, parameters: dict[str, str], verb: str, pause_seconds: int) -> bytes:
    """The TwiML document (Twilio's ``<Stream>`` noun inside ``<Start>`` or ``<Connect>``)."""
    response = ET.Element("Response")
    wrapper = ET.SubElement(response, "Start" if verb == "start" else "Connect")
    stream = ET.SubElement(wrapper, "Stream", url=stream_url)
    for key, value in parameters.items():
        ET.SubElement(stream, "Parameter", name=key, value=value)
    if verb == "start":
        ET.SubElement(response, "Pause", length=str(pause_seconds))
    document: bytes = ET.tostring(response, encoding="utf-8", xml_declaration=True)
    return document


def add_twiml_routes(app: web.Application) -> None:
    app.router.add_post("/twiml/{route}", twiml)
