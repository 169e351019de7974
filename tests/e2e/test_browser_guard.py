"""Another site's web page cannot drive a daemon on loopback (security review of 2026-12-07, finding 1).

Debian's chromium (playwright-core, tests/console/cross_origin_flow.mjs) opens a page of another
origin that sends a text/plain fetch and a text/plain form POST to /RESTCall/call and a fetch to
/api/v1/node/drain, then reads /api/v1/calls under a rebound name. The verdict comes from the other
side: kamailio saw no INVITE, the daemon lists no such call and still takes calls; and the same body
sent by a script (no browser) does place a call, so the refusal is the browser check's, not a bad body.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.http_sink import HttpSink
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
CONSOLE_TESTS = Path(__file__).resolve().parents[2] / "tests" / "console"
EVIL_PAGE = b"<!doctype html><title>cat pictures</title><p>nothing to see</p>"


@pytest.fixture(scope="module")
def evil_site() -> Iterator[int]:
    page = HttpSink(body=EVIL_PAGE, content_type="text/html")
    yield page.port
    page.stop()


def _form_field(body: dict[str, Any]) -> dict[str, str]:
    """A text/plain form field whose ``name=value`` line is ``body`` as JSON (the classic trick)."""
    document = json.dumps({**body, "pad": "="})
    split = document.rindex('="}')
    return {"name": document[:split], "value": document[split + 1 :]}


def _invites(domain: Kamailio) -> int:
    return domain.log().count("REQ INVITE")


def test_a_foreign_page_cannot_drive_the_daemon(
    daemon: BridgeDaemon, nginx: NginxRtmp, sip_domain: Kamailio, account: SipAccount, evil_site: int
) -> None:
    fetched = call_body("fetch-attack", "attack1", nginx, sip_domain, account)
    formed = call_body("form-attack", "attack2", nginx, sip_domain, account)
    invites_before = _invites(sip_domain)
    scenario = {
        "evilUrl": f"http://evil.example:{evil_site}/",
        "daemonUrl": daemon.base_url,
        "daemonPort": daemon.rest_port,
        "fetchBody": fetched,
        "formField": _form_field(formed),
    }
    done = subprocess.run(
        ["node", str(CONSOLE_TESTS / "cross_origin_flow.mjs"), json.dumps(scenario)],
        cwd=CONSOLE_TESTS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen.get("ok"), f"the browser scenario failed: {seen} {done.stderr[-2000:]}"

    assert "forbidden_origin" in seen["formAnswer"]  # what the form's navigation showed
    assert seen["reboundStatus"] == 421 and "fetch-attack" not in seen["reboundBody"]
    # The other side: no INVITE reached the SIP domain, no call exists, the daemon did not drain.
    assert _invites(sip_domain) == invites_before, "a call was placed from the foreign page"
    assert daemon.request("GET", "/RESTCall/calls/fetch-attack")[0] == 404
    assert daemon.request("GET", "/RESTCall/calls/form-attack")[0] == 404
    assert daemon.request("GET", "/readyz")[0] == 200

    # The same body from a script (no Origin), even as text/plain, does place a call.
    text = {"Content-Type": "text/plain"}
    status, _ = daemon.request("POST", "/RESTCall/call", raw=json.dumps(fetched).encode(), headers=text)
    assert status == 200
    wait_until(lambda: _invites(sip_domain) > invites_before, 10, "the script's INVITE at the SIP domain")
    daemon.request("POST", "/RESTCall/terminate", {"callId": "fetch-attack"})
    daemon.wait_gone("fetch-attack")
