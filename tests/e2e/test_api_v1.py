"""The operator surface through the real HTTP server: auth, /api/v1, errors, hardening, webhooks, SSE."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rest.auth import hash_token
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body, direct_call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.secrets import capture, register_secret
from tests.support.silent_uas import DtmfSinkUas, SilentUas
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e
FULL, READ, BURST = "full-token-0123456789", "read-token-0123456789", "burst-token-0123456789"
LISTEN, OTHER_APP = "listen-token-0123456789", "other-app-token-0123456789"
SECRET = "hook-secret-0123456789"
register_secret(FULL, READ, BURST, LISTEN, OTHER_APP, SECRET)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(SECRET, fail_first=2)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(workdir: Path, receiver: WebhookReceiver) -> Iterator[BridgeDaemon]:
    tokens = [
        {"sha256": hash_token(FULL), "scope": "full", "name": "ops"},
        {"sha256": hash_token(READ), "scope": "read", "name": "dashboard"},
        {"sha256": hash_token(BURST), "scope": "read", "name": "burst"},
        {"sha256": hash_token(LISTEN), "scope": "listen", "name": "supervisor"},
        {"sha256": hash_token(OTHER_APP), "scope": "full", "name": "tenant-b", "apps": ["other"]},
    ]
    env = {
        "BRIDGE_AUTH__REQUIRED": "always",
        "BRIDGE_AUTH__TOKENS": json.dumps(tokens),
        "BRIDGE_APPS__HOOKAPP": json.dumps({"url": receiver.url, "secret": SECRET}),
        "BRIDGE_LIMITS__ALLOWED_RTMP_HOSTS": '["127.0.0.1"]',
        "BRIDGE_LIMITS__MAX_BODY_BYTES": "4096",
    }
    bridge = BridgeDaemon(workdir / "api", env=env, token=FULL)
    yield bridge
    bridge.stop()


def body(nginx: NginxRtmp, domain: Kamailio, account: SipAccount, call_id: str, **changes: Any) -> dict[str, Any]:
    data = call_body(call_id, call_id.replace("-", ""), nginx, domain, account)
    data["connection"]["appKey"] = "hookapp"
    data.update(changes)
    return data


def test_auth_rules(api: BridgeDaemon) -> None:
    status, reply = api.request("GET", "/api/v1/calls", token="")
    assert status == 401 and reply["error"]["code"] == "unauthorized"
    assert api.last_headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert api.request("GET", "/api/v1/calls", token="wrong")[0] == 401
    assert api.request("GET", "/api/v1/calls", token=READ)[0] == 200
    status, reply = api.request("POST", "/api/v1/calls", {}, token=READ)
    assert status == 403 and "read-only" in reply["error"]["message"]
    assert api.request("GET", "/healthz", token="")[0] == 200  # liveness needs no token


def test_rate_limit_per_token(api: BridgeDaemon) -> None:
    statuses, retry_after = [], []
    for _ in range(160):
        statuses.append(api.request("GET", "/api/v1/calls", token=BURST)[0])
        if statuses[-1] == 429:
            retry_after.append(int(api.last_headers["Retry-After"]))
    assert statuses.count(200) >= 100 and 429 in statuses
    assert min(retry_after) >= 1


def test_errors_have_one_shape(api: BridgeDaemon) -> None:
    for method, path, payload, status, field in [
        ("GET", "/api/v1/calls/nope", None, 404, "callId"),
        ("DELETE", "/api/v1/calls/nope", None, 404, "callId"),
        ("GET", "/api/v1/calls?state=SLEEPING", None, 400, "state"),
        ("GET", "/api/v1/calls?limit=5000", None, 400, "limit"),
        ("GET", "/api/v1/nothing-here", None, 404, None),
        ("POST", "/api/v1/calls", {"callId": "x"}, 400, "callee"),
    ]:
        got, reply = api.request(method, path, payload)
        assert got == status, (path, reply)
        assert set(reply["error"]) == {"code", "message", "field"} and reply["error"]["field"] == field


def test_hardening_rejects_before_anything_is_sent(
    api: BridgeDaemon, nginx: NginxRtmp, sip_domain: Kamailio, account: SipAccount
) -> None:
    invites_before = sip_domain.log().count("REQ INVITE")
    cases = [
        (body(nginx, sip_domain, account, "inj-1", callee="uas\r\nVia: SIP/2.0/UDP evil"), "callee"),
        (body(nginx, sip_domain, account, "inj-2", callee="sip:uas@127.0.0.1?Route=%3Csip:evil%3E"), "callee"),
        (body(nginx, sip_domain, account, "inj-3", callee="uas>;x=<sip:evil"), "callee"),
        (body(nginx, sip_domain, account, "inj-4", rtmpUrl="rtmp://10.0.0.1/live"), "rtmpUrl"),
        (body(nginx, sip_domain, account, "inj-5", rtmpUrl="file:///etc/passwd"), "rtmpUrl"),
    ]
    app_case = body(nginx, sip_domain, account, "inj-6")
    app_case["connection"]["appKey"] = "unknown-app"
    cases.append((app_case, "connection.appKey"))
    login_case = body(nginx, sip_domain, account, "inj-7")
    login_case["connection"]["sipLogin"] = "bridge\x00admin"
    cases.append((login_case, "connection.sipLogin"))
    for payload, field in cases:
        status, reply = api.request("POST", "/api/v1/calls", payload)
        assert status == 400 and reply["error"]["field"] == field, (field, reply)
    status, reply = api.request("POST", "/api/v1/calls", raw=b'{"callId": "' + b"x" * 8000 + b'"}')
    assert status == 413 and reply["error"]["code"] == "body_too_large"
    time.sleep(0.3)
    assert sip_domain.log().count("REQ INVITE") == invites_before  # nothing reached the wire


def read_sse(api: BridgeDaemon, path: str, until: str, seconds: float, out: list[dict[str, Any]]) -> None:
    req = urllib.request.Request(api.base_url + path, headers={"Authorization": f"Bearer {READ}"})
    deadline = time.monotonic() + seconds
    with urllib.request.urlopen(req, timeout=seconds) as stream:
        for line in stream:
            capture("server-sent-events", line)
            if line.startswith(b"data: "):
                out.append(json.loads(line[6:]))
                if until in json.dumps(out[-1]) or time.monotonic() > deadline:
                    return


def test_call_lifecycle_with_webhooks_and_live_events(
    api: BridgeDaemon,
    nginx: NginxRtmp,
    far_end: Baresip,
    sip_domain: Kamailio,
    account: SipAccount,
    receiver: WebhookReceiver,
) -> None:
    seen: list[dict[str, Any]] = []
    reader = threading.Thread(target=read_sse, args=(api, "/api/v1/events?callId=v1-call", "ESTABLISHED", 15, seen))
    reader.start()
    time.sleep(0.3)
    status, created = api.request("POST", "/api/v1/calls", body(nginx, sip_domain, account, "v1-call"))
    assert status == 201 and api.last_headers["Location"] == "/api/v1/calls/v1-call"
    assert created["state"] in ("PENDING", "TRYING") and account.password not in json.dumps(created)
    api.wait_state("v1-call", {"ESTABLISHED"})
    reader.join(15)
    assert any(e["type"] == "call.state" and e["state"] == "ESTABLISHED" for e in seen)
    assert all(e["callId"] == "v1-call" for e in seen)

    status, page = api.request("GET", "/api/v1/calls?state=ESTABLISHED&limit=1")
    assert status == 200 and page["total"] >= 1 and [c["callId"] for c in page["calls"]] == ["v1-call"]
    status, events = api.request("GET", "/api/v1/calls/v1-call/events")
    assert status == 200 and any(e["message"].startswith("INVITE") for e in events["sipLadder"])
    status, _ = api.request("DELETE", "/api/v1/calls/v1-call")
    assert status == 202
    api.wait_gone("v1-call")
    assert api.request("DELETE", "/api/v1/calls/v1-call")[0] == 409

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(e.get("state") == "FINISH" for e in receiver.events):
        time.sleep(0.1)
    states = [e["state"] for e in receiver.events if e["type"] == "call.state" and e["callId"] == "v1-call"]
    print(f"\nwebhooks: {receiver.attempts} attempts, {len(receiver.events)} delivered, states {states}")
    assert states[0] == "PENDING" and "ESTABLISHED" in states and states[-1] == "FINISH"
    ids = [e["id"] for e in receiver.events if e["callId"] == "v1-call"]
    assert ids == sorted(ids)  # in order per call, also across the two failed first attempts
    assert receiver.attempts >= len(receiver.events) + 2 and receiver.bad_signatures == 0
    assert {"id", "type", "callId", "appKey", "state", "reason", "timestamp", "counters"} <= set(receiver.events[-1])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*", receiver.events[-1]["timestamp"])


def metric_values(api: BridgeDaemon) -> dict[str, float]:
    """/metrics (with the read token) parsed by prometheus_client's own parser: name{labels} -> value."""
    req = urllib.request.Request(api.base_url + "/metrics", headers={"Authorization": f"Bearer {READ}"})
    with urllib.request.urlopen(req, timeout=5) as reply:
        text = reply.read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def test_metrics_move_with_a_call_and_health_answers(
    api: BridgeDaemon, nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount
) -> None:
    status, ready = api.request("GET", "/readyz", token="")
    assert status == 200 and ready == {"ready": True, "problems": []}
    before = metric_values(api)
    assert api.request("POST", "/api/v1/calls", body(nginx, sip_domain, account, "metrics-1"))[0] == 201
    api.wait_state("metrics-1", {"ESTABLISHED"})
    wait_until(lambda: nginx.stream_stat("metrics1") is not None, 10, "published")

    def moved_enough() -> bool:  # the workers report counters once a second, later on a busy host
        now = metric_values(api)
        packets = now.get("bridge_rtp_packets", 0) - before.get("bridge_rtp_packets", 0)
        return packets >= 100 and now.get("bridge_rtmp_bytes", 0) - before.get("bridge_rtmp_bytes", 0) >= 5000

    wait_until(moved_enough, 10, "the call's packets and bytes in the metrics")
    during = metric_values(api)
    api.request("DELETE", "/api/v1/calls/metrics-1")
    api.wait_gone("metrics-1")
    after = metric_values(api)
    finished = 'bridge_calls_total{state="FINISH"}'
    moved = {name: during[name] - before.get(name, 0) for name in ("bridge_rtp_packets", "bridge_rtmp_bytes")}
    active = [values["bridge_active_calls"] for values in (before, during, after)]
    print(f"\nmetrics: active calls {active}, during the call {moved}")
    assert during["bridge_active_calls"] == before["bridge_active_calls"] + 1
    assert after["bridge_active_calls"] == before["bridge_active_calls"]
    assert during["bridge_rtp_packets"] - before.get("bridge_rtp_packets", 0) >= 100  # 50 packets a second
    assert during["bridge_rtmp_bytes"] - before.get("bridge_rtmp_bytes", 0) >= 5000  # 32 kbit/s AAC
    assert after.get(finished, 0) == before.get(finished, 0) + 1
    assert after["bridge_call_setup_seconds_count"] == before.get("bridge_call_setup_seconds_count", 0) + 1
    assert during["process_resident_memory_bytes"] > 0 and 'bridge_event_loop_lag_ms{quantile="p99"}' in during


def test_history_survives_kill_9_and_marks_the_call_failed(
    workdir: Path, nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount
) -> None:
    bridge = BridgeDaemon(workdir / "killed")
    try:
        status, _ = bridge.request(
            "POST", "/api/v1/calls", call_body("doomed-1", "doomed1", nginx, sip_domain, account)
        )
        assert status == 201
        bridge.wait_state("doomed-1", {"ESTABLISHED"})
        time.sleep(0.3)  # the writer thread stores the state change
        bridge.kill()
        bridge.start()
        status, call = bridge.request("GET", "/api/v1/calls/doomed-1")
        assert status == 200 and call["state"] == "FAILED" and call["reason"] == "bridge restarted"
        status, legacy = bridge.request("GET", "/RESTCall/calls/doomed-1")
        assert status == 200 and legacy["state"] == "FAILED"
        status, found = bridge.request("GET", "/api/v1/history?state=FAILED")
        assert status == 200 and any(c["callId"] == "doomed-1" for c in found["calls"])
        assert "marked FAILED (bridge restarted)" in bridge.log()
    finally:
        bridge.stop()
        far_end.hangup()


def test_openapi_document_and_schemathesis(api: BridgeDaemon) -> None:
    status, document = api.request("GET", "/api/v1/openapi.json", token="")
    assert status == 200 and document["openapi"] == "3.1.0"
    assert {"ApiCallRequest", "CallView", "DestinationView", "ErrorBody"} <= set(document["components"]["schemas"])
    with urllib.request.urlopen(api.base_url + "/api/v1/docs", timeout=5) as reply:
        page = reply.read().decode()
    assert "<table>" in page and "/api/v1/calls/{callId}" in page and "<script src" not in page
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{api.base_url}/api/v1/openapi.json",
            "-H",
            f"Authorization: Bearer {FULL}",
            "--max-examples",
            "15",
            "--exclude-path",
            "/api/v1/events",
            "--exclude-path",
            "/api/v1/node/drain",  # it would stop the daemon under test (tests/e2e/test_cluster_drain.py)
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance",
            "--workers",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    tail = result.stdout[-3000:]
    print("\n" + tail)
    assert result.returncode == 0, tail


def test_dtmf_is_sent_as_rfc4733_events(api: BridgeDaemon, nginx: NginxRtmp, receiver: WebhookReceiver) -> None:
    sink = DtmfSinkUas()
    try:
        payload = direct_call_body(
            "dtmf-1", "dtmf1", nginx.url, sink.port, callee="sink", hasAudio="true", connection={"appKey": "hookapp"}
        )
        assert api.request("POST", "/api/v1/calls", payload)[0] == 201
        api.wait_state("dtmf-1", {"ESTABLISHED"})
        assert api.request("POST", "/api/v1/calls/dtmf-1/dtmf", {"digits": "12x"})[0] == 400
        status, reply = api.request("POST", "/api/v1/calls/dtmf-1/dtmf", {"digits": "1#9A"})
        assert status == 202 and reply == {"callId": "dtmf-1", "digits": "1#9A"}
        deadline = time.monotonic() + 5
        while len(sink.digits) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.digits == ["1", "#", "9", "A"]
        _scopes_and_apps(api, payload)
        api.request("DELETE", "/api/v1/calls/dtmf-1")
        api.wait_gone("dtmf-1")
        assert api.request("POST", "/api/v1/calls/dtmf-1/dtmf", {"digits": "1"})[0] == 409
        # Digits are often PINs: masked in the log and the stored history (log.mask_dtmf, on by default),
        # while the signed webhook still carries them.
        sent = [line for line in api.log().splitlines() if "dtmf-sent" in line]
        assert sent and all("1#9A" not in line and "••••" in line for line in sent), sent
        assert b"1#9A" not in (api.dir / "history.sqlite3").read_bytes()
        wait_until(lambda: any(e.get("digits") == "1#9A" for e in receiver.events), 10, "the signed webhook")
    finally:
        sink.stop()


def _scopes_and_apps(api: BridgeDaemon, payload: dict[str, Any]) -> None:
    """Review finding 12: a read token neither hears calls nor reads digits; a token bound to
    another app neither sees nor ends this call, nor starts one for this app."""
    seen = json.dumps(api.request("GET", "/api/v1/calls/dtmf-1", token=FULL)[1])
    assert "1#9A" in seen
    for token in (READ, LISTEN):
        seen = json.dumps(api.request("GET", "/api/v1/calls/dtmf-1", token=token)[1])
        assert "1#9A" not in seen and "dtmf-sent" in seen, seen
    assert api.request("GET", "/api/v1/calls/dtmf-1/tickets", token=READ)[0] == 403
    assert api.request("GET", "/api/v1/calls/dtmf-1/recordings", token=READ)[0] == 403
    assert api.request("GET", "/api/v1/calls/dtmf-1/tickets", token=LISTEN)[0] == 200
    assert api.request("DELETE", "/api/v1/calls/dtmf-1", token=LISTEN)[0] == 403
    assert api.request("GET", "/api/v1/calls/dtmf-1", token=OTHER_APP)[0] == 404
    assert api.request("DELETE", "/api/v1/calls/dtmf-1", token=OTHER_APP)[0] == 404
    assert api.request("POST", "/RESTCall/terminate", {"callId": "dtmf-1"}, token=OTHER_APP)[0] == 404
    listed = api.request("GET", "/api/v1/calls", token=OTHER_APP)[1]["calls"]
    assert all(call["appKey"] == "other" for call in listed)
    status, refused = api.request("POST", "/api/v1/calls", {**payload, "callId": "dtmf-2"}, token=OTHER_APP)
    assert status == 403 and refused["error"]["field"] == "connection.appKey"
    assert api.call("dtmf-1")["state"] == "ESTABLISHED"  # type: ignore[index]


def test_cli_talks_to_the_api(
    api: BridgeDaemon, nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount
) -> None:
    cli = str(Path(sys.executable).parent / "sip-rtmp-bridge")
    env = {"BRIDGE_TOKEN": FULL, "BRIDGE_SIP_PASSWORD": account.password, "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli, "--url", api.base_url, *args], capture_output=True, text=True, env=env, timeout=30)

    placed = run(
        "call",
        "--call-id",
        "cli-1",
        "--callee",
        "uas",
        "--rtmp-url",
        nginx.url,
        "--stream",
        "cli1",
        "--domain",
        "127.0.0.1",
        "--port",
        str(sip_domain.port),
        "--login",
        account.user,
        "--app-key",
        "hookapp",
    )
    assert placed.returncode == 0 and placed.stdout.startswith("cli-1: "), placed.stderr
    api.wait_state("cli-1", {"ESTABLISHED"})
    listing = run("calls", "--state", "ESTABLISHED")
    assert listing.returncode == 0 and "cli-1" in listing.stdout and "ESTABLISHED" in listing.stdout
    shown = run("show", "cli-1")
    assert json.loads(shown.stdout)["callId"] == "cli-1" and account.password not in shown.stdout
    assert run("hangup", "cli-1").returncode == 0
    api.wait_gone("cli-1")
    missing = run("show", "nope")
    assert missing.returncode == 1 and "404" in missing.stderr
    denied = subprocess.run(
        [cli, "--url", api.base_url, "calls"], capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"}
    )
    assert denied.returncode == 1 and "401" in denied.stderr


def test_cli_watch_prints_live_events(api: BridgeDaemon) -> None:
    cli = str(Path(sys.executable).parent / "sip-rtmp-bridge")
    far_end = SilentUas()  # answers at once, so the call ends quickly after the hang-up
    watcher = subprocess.Popen(
        [cli, "--url", api.base_url, "watch", "--count", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"BRIDGE_TOKEN": READ, "PATH": "/usr/bin:/bin"},
    )
    try:
        assert watcher.stderr is not None and watcher.stderr.readline().startswith("watching ")  # subscribed
        connection = {
            "sipLogin": "b",
            "sipPassword": "x",
            "sipDomain": "127.0.0.1",
            "sipPort": far_end.port,
            "appKey": "hookapp",
        }
        payload = {
            "callId": "watch-1",
            "callee": "x",
            "rtmpUrl": "rtmp://127.0.0.1:1/live",
            "rtmpStream": "w1",
            "connection": connection,
        }
        assert api.request("POST", "/api/v1/calls", payload)[0] == 201
        out, _ = watcher.communicate(timeout=10)
        lines = out.strip().splitlines()
        assert len(lines) == 2 and re.search(r"watch-1\s+call\.state\s+PENDING accepted", lines[0]), lines
        api.request("DELETE", "/api/v1/calls/watch-1")
        api.wait_gone("watch-1")
    finally:
        watcher.kill()
        watcher.wait(5)
        far_end.stop()
