"""``sip-rtmp-bridge call|calls|show|hangup|dtmf|watch|drain|hash-token``: the REST API from a shell.

The API address comes from ``--url``, ``$BRIDGE_URL`` or the config's ``rest.listen``;
the token from ``$BRIDGE_TOKEN`` (never from the command line, where ``ps`` shows it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from bridge.config import BridgeConfig
from rest.auth import hash_token


class ApiError(Exception):
    pass


class ApiClient:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url, self.token = base_url.rstrip("/"), token

    def _request(self, method: str, path: str, body: Any = None) -> urllib.request.Request:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        return urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            with urllib.request.urlopen(self._request(method, path, body), timeout=10) as reply:
                return json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as exc:
            error = json.loads(exc.read() or b"{}").get("error", {})
            field = f" ({error['field']})" if error.get("field") else ""
            raise ApiError(f"{exc.code}: {error.get('message', exc.reason)}{field}") from None
        except OSError as exc:
            raise ApiError(f"cannot reach {self.base_url}: {exc}") from None

    def events(self, call_id: str | None) -> Any:
        path = "/api/v1/events" + (f"?callId={call_id}" if call_id else "")
        with urllib.request.urlopen(self._request("GET", path), timeout=None) as stream:
            print(f"watching {self.base_url}{path} (Ctrl-C to stop)", file=sys.stderr, flush=True)
            for line in stream:
                if line.startswith(b"data: "):
                    yield json.loads(line[6:])


def add_client_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, parents=[common])

    call = command("call", "place a call and publish it")
    for flag, required in [
        ("--call-id", True),
        ("--callee", True),
        ("--rtmp-url", True),
        ("--stream", True),
        ("--domain", True),
        ("--login", True),
        ("--port", False),
        ("--auth-name", False),
        ("--transport", False),
        ("--srtp", False),
        ("--app-key", False),
    ]:
        call.add_argument(flag, required=required)
    call.add_argument("--has-audio", action="store_true", help="sendrecv: send silence to the far end")
    command("calls", "list calls").add_argument("--state")
    command("show", "one call, with its timeline").add_argument("call_id")
    command("hangup", "hang up a call").add_argument("call_id")
    dtmf = command("dtmf", "send DTMF digits (RFC 4733) into a call")
    dtmf.add_argument("call_id")
    dtmf.add_argument("digits")
    watch = command("watch", "live events, one line each")
    watch.add_argument("--call-id")
    watch.add_argument("--count", type=int, default=0, help="stop after this many events")
    command("hash-token", "print the sha256 to put in [[auth.tokens]] for $BRIDGE_TOKEN")
    drain = command("drain", "take no new calls; stop (exit 0) once this node's calls have ended")
    drain.add_argument("--timeout", type=float, default=3600.0, help="hang up what is left after this many seconds")
    drain.add_argument("--wait", action="store_true", help="return only when the daemon has stopped")


def run_client(args: argparse.Namespace, config: BridgeConfig) -> int:
    token = os.environ.get("BRIDGE_TOKEN", "")
    if args.action == "hash-token":
        if not token:
            print("set BRIDGE_TOKEN to the token to hash", file=sys.stderr)
            return 2
        print(hash_token(token))
        return 0
    url = args.url or os.environ.get("BRIDGE_URL") or f"http://{config.rest.listen}"
    client = ApiClient(url, token)
    try:
        return _COMMANDS[args.action](client, args)
    except ApiError as exc:
        print(f"sip-rtmp-bridge: {exc}", file=sys.stderr)
        return 1


def _call(client: ApiClient, args: argparse.Namespace) -> int:
    password = os.environ.get("BRIDGE_SIP_PASSWORD", "")
    connection = {"sipLogin": args.login, "sipPassword": password, "sipDomain": args.domain}
    for key, value in [
        ("sipPort", args.port),
        ("sipAuthenticationName", args.auth_name),
        ("sipTransport", args.transport),
        ("srtp", args.srtp),
        ("appKey", args.app_key),
    ]:
        if value:
            connection[key] = value
    body = {
        "callId": args.call_id,
        "callee": args.callee,
        "rtmpUrl": args.rtmp_url,
        "rtmpStream": args.stream,
        "hasAudio": args.has_audio,
        "connection": connection,
    }
    call = client.call("POST", "/api/v1/calls", body)
    print(f"{call['callId']}: {call['state']} -> {call['rtmpTarget']}")
    return 0


def _calls(client: ApiClient, args: argparse.Namespace) -> int:
    query = f"?state={args.state}" if args.state else ""
    page = client.call("GET", f"/api/v1/calls{query}")
    print(f"{'CALL ID':<24} {'STATE':<17} {'STREAM':<13} {'PACKETS':>8} {'LOST':>5}  REASON")
    for call in page["calls"]:
        counters = call.get("counters", {})
        print(
            f"{call['callId']:<24} {call['state']:<17} {call['streamState']:<13} "
            f"{counters.get('packets', 0):>8} {counters.get('lost', 0):>5}  {call['reason']}"
        )
    return 0


def _show(client: ApiClient, args: argparse.Namespace) -> int:
    print(json.dumps(client.call("GET", f"/api/v1/calls/{args.call_id}"), indent=2))
    return 0


def _hangup(client: ApiClient, args: argparse.Namespace) -> int:
    call = client.call("DELETE", f"/api/v1/calls/{args.call_id}")
    print(f"{call['callId']}: hanging up")
    return 0


def _dtmf(client: ApiClient, args: argparse.Namespace) -> int:
    reply = client.call("POST", f"/api/v1/calls/{args.call_id}/dtmf", {"digits": args.digits})
    print(f"{args.call_id}: sending {reply['digits']}")
    return 0


def _watch(client: ApiClient, args: argparse.Namespace) -> int:
    """A live table on a terminal (redrawn per event); one line per event when piped."""
    table: dict[str, dict[str, Any]] = {}
    seen = 0
    try:
        for event in client.events(args.call_id):
            if sys.stdout.isatty():
                _update(table, event)
                _draw(table)
            else:
                detail = event.get("state") or event.get("event") or ""
                print(
                    f"{event['timestamp']} {event['callId']:<20} {event['type']:<12} {detail} "
                    f"{event.get('reason', '')}",
                    flush=True,
                )
            seen += 1
            if args.count and seen >= args.count:
                break
    except KeyboardInterrupt:
        pass
    return 0


def _update(table: dict[str, dict[str, Any]], event: dict[str, Any]) -> None:
    row = table.setdefault(event["callId"], {"state": "", "stream": "", "reason": "", "counters": {}})
    if event["type"] == "call.state":
        row.update(state=event["state"], reason=event["reason"])
    elif event["type"] == "stream.state":
        row["stream"] = event["state"]
    row["counters"] = event.get("counters") or row["counters"]


def _draw(table: dict[str, dict[str, Any]]) -> None:
    lines = [f"{'CALL ID':<24} {'STATE':<17} {'STREAM':<13} {'PACKETS':>8} {'LOST':>5} {'LEVEL':>6}  REASON"]
    for call_id, row in table.items():
        counters = row["counters"]
        lines.append(
            f"{call_id:<24} {row['state']:<17} {row['stream']:<13} {counters.get('packets', 0):>8} "
            f"{counters.get('lost', 0):>5} {counters.get('levelDbfs', -120):>6}  {row['reason']}"
        )
    print("\x1b[2J\x1b[H" + "\n".join(lines), flush=True)


def _drain(client: ApiClient, args: argparse.Namespace) -> int:
    node = client.call("POST", "/api/v1/node/drain", {"timeoutSeconds": args.timeout})
    print(f"{node['node']}: draining, {node['activeCalls']} call(s) left; it stops when they end "
          f"(at most {node['timeoutSeconds']:g} s)")  # fmt: skip
    while args.wait:
        try:
            client.call("GET", "/api/v1/node")
        except ApiError as exc:
            if not str(exc).startswith("cannot reach"):
                raise
            print(f"{node['node']}: stopped")  # no answer any more: the daemon has exited
            return 0
        time.sleep(1.0)
    return 0


_COMMANDS = {
    "call": _call,
    "calls": _calls,
    "show": _show,
    "hangup": _hangup,
    "dtmf": _dtmf,
    "watch": _watch,
    "drain": _drain,
}
