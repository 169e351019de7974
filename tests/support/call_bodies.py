"""REST bodies that place a call through the SIP domain (kamailio) or straight to the far end."""

from __future__ import annotations

from typing import Any

from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.secrets import register_secret


def call_body(
    call_id: str,
    stream: str,
    nginx: NginxRtmp | None,
    domain: Kamailio,
    account: SipAccount,
    password: str | None = None,
    rtmp_url: str = "",
) -> dict[str, Any]:
    """The REST contract as clients send it (booleans and ports as strings), calling baresip via kamailio.

    The stream goes to ``nginx``'s ``live`` application, or to ``rtmp_url`` when given.
    """
    register_secret(password or account.password)
    return {
        "callId": call_id,
        "callee": "uas",
        "rtmpUrl": rtmp_url or (nginx.url if nginx is not None else ""),
        "rtmpStream": stream,
        "hasAudio": "false",
        "hasVideo": "false",
        "connection": {
            "sipLogin": account.user,
            "sipPassword": password or account.password,
            "sipAuthenticationName": account.user,
            "sipDomain": "127.0.0.1",
            "sipPort": str(domain.port),
            "sipRegisterRequired": "false",
            "appKey": "local",
        },
    }


def direct_call_body(
    call_id: str, stream: str, rtmp_url: str, far_end_port: int, callee: str, **fields: Any
) -> dict[str, Any]:
    """A call straight to a scripted far end on 127.0.0.1: no SIP domain, so no digest challenge.

    ``connection`` in ``fields`` adds to the connection object; other fields replace top-level ones.
    """
    connection = {"sipLogin": "bridge", "sipPassword": "x", "sipDomain": "127.0.0.1", "sipPort": far_end_port}
    connection.update(fields.pop("connection", {}))
    return {
        "callId": call_id,
        "callee": callee,
        "rtmpUrl": rtmp_url,
        "rtmpStream": stream,
        **fields,
        "connection": connection,
    }
