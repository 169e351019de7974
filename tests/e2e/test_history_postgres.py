"""The history in PostgreSQL (``history.url``), against Debian's server; psql reads what was written.

- the store: lifecycle, migrations run once when nodes start together, an outage held back and
  caught up, a restart that fails only this node's calls;
- the daemon: a call's history survives restarts, a kill -9 mid-call ends FAILED "bridge restarted",
  an unreachable server stops start-up with one line that names it without the password.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bridge.history import RESTARTED, HistoryStore
from bridge.history.postgres import PostgresBackend
from bridge.history.schema import LATEST
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.ports import free_port
from tests.support.postgres import PASSWORD, PostgresServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def _view(call_id: str, state: str) -> dict[str, object]:
    return {"callId": call_id, "appKey": "app", "createdAt": "2026-12-06T10:00:00+00:00", "state": state,
            "reason": "r", "sipLadder": [{"message": "INVITE sip:x@y"}]}  # fmt: skip


def _rows(postgres: PostgresServer, database: str) -> dict[str, tuple[str, str, str]]:
    rows = postgres.psql("SELECT call_id, state, reason, node FROM calls ORDER BY id", database)
    return {call_id: (state, reason, node) for call_id, state, reason, node in rows}


def _recordings(postgres: PostgresServer) -> list[list[str]]:
    return postgres.psql("SELECT call_id, state FROM recordings ORDER BY id", "daemon")


def test_migrations_run_once_when_nodes_start_together(postgres: PostgresServer) -> None:
    url = postgres.create_database("migrate")
    stores: list[HistoryStore] = []
    errors: list[BaseException] = []

    def open_store(node: str) -> None:
        try:
            stores.append(HistoryStore(PostgresBackend(url), 30, node))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store, args=(f"node-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and len(stores) == 4
    assert postgres.psql("SELECT version FROM schema_version", "migrate") == [[str(LATEST)]]
    columns = postgres.psql("SELECT column_name FROM information_schema.columns WHERE table_name = 'calls'", "migrate")
    assert ["node"] in columns
    for store in stores:
        store.close()


def test_lifecycle_and_a_restart_that_fails_only_this_nodes_calls(postgres: PostgresServer) -> None:
    url = postgres.create_database("nodes")
    a, b = HistoryStore(PostgresBackend(url), 30, "node-a"), HistoryStore(PostgresBackend(url), 30, "node-b")
    a.started(_view("a-done", "PENDING"))
    a.state_changed("a-done", "ESTABLISHED", "200 OK")
    a.ended(dict(_view("a-done", "FINISH"), reason="remote hangup", counters={"packets": 5}))
    a.started(_view("a-live", "PENDING"))
    b.started(_view("b-live", "PENDING"))
    b.state_changed("b-live", "ESTABLISHED", "200 OK")
    a.flush()
    b.flush()
    a.close()  # like kill -9 of node a: a-live never ended
    assert _rows(postgres, "nodes")["b-live"] == ("ESTABLISHED", "200 OK", "node-b")
    reopened = HistoryStore(PostgresBackend(url), 30, "node-a")
    assert reopened.recovered == 1
    rows = _rows(postgres, "nodes")
    assert rows["a-done"] == ("FINISH", "remote hangup", "node-a")
    assert rows["a-live"] == ("FAILED", RESTARTED, "node-a")
    assert rows["b-live"] == ("ESTABLISHED", "200 OK", "node-b")  # node b's call is not ours to end
    stored = json.loads(postgres.psql("SELECT view FROM calls WHERE call_id = 'a-done'", "nodes")[0][0])
    assert stored["counters"] == {"packets": 5} and stored["sipLadder"] == [{"message": "INVITE sip:x@y"}]
    total, calls = reopened.search("FAILED", None, 10, 0)
    assert total == 1 and calls[0]["callId"] == "a-live"
    for store in (reopened, b):
        store.close()


def test_an_outage_holds_writes_back_and_they_catch_up_in_order(postgres: PostgresServer) -> None:
    url = postgres.create_database("outage")
    store = HistoryStore(PostgresBackend(url), 30, "node-a")
    store.started(_view("before", "PENDING"))
    store.flush()
    postgres.stop()
    try:
        for index in range(20):
            store.started(_view(f"during-{index}", "PENDING"))
            store.ended(_view(f"during-{index}", "FINISH"))
        wait_until(lambda: store.held_back == 40 and store.failures >= 2, 10, "writes held back")
    finally:
        postgres.start()
    wait_until(lambda: store.held_back == 0, 15, "the held-back writes written")
    rows = _rows(postgres, "outage")
    assert len(rows) == 21 and all(rows[f"during-{i}"][0] == "FINISH" for i in range(20))
    ids = [
        int(row[0]) for row in postgres.psql("SELECT id FROM calls WHERE call_id LIKE 'during-%' ORDER BY id", "outage")
    ]
    names = [
        row[0] for row in postgres.psql("SELECT call_id FROM calls WHERE call_id LIKE 'during-%' ORDER BY id", "outage")
    ]
    assert names == [f"during-{i}" for i in range(20)] and ids == sorted(ids)
    store.close()


def test_a_call_history_in_postgres_survives_restarts_and_a_kill(
    tmp_path: Path, postgres: PostgresServer, nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio,
    account: SipAccount,
) -> None:  # fmt: skip
    url = postgres.create_database("daemon")
    recordings = tmp_path / "recordings"
    extra = f'\n[recording]\ndirectory = "{recordings}"\nformats = ["wav"]\n'
    daemon = BridgeDaemon(tmp_path, history_url=url, extra_config=extra)
    try:
        assert daemon.request("POST", "/RESTCall/call", call_body("pg-1", "pg1", nginx, sip_domain, account))[0] == 200
        daemon.wait_state("pg-1", {"ESTABLISHED"})
        wait_until(lambda: nginx.stream_stat("pg1") is not None, 10, "published")
        daemon.request("POST", "/RESTCall/terminate", {"callId": "pg-1"})
        daemon.wait_gone("pg-1")
        wait_until(lambda: _rows(postgres, "daemon").get("pg-1", ("",))[0] == "FINISH", 10, "FINISH in PostgreSQL")
        wait_until(lambda: _recordings(postgres) == [["pg-1", "complete"]], 10, "the recording complete in PostgreSQL")
        status, listed = daemon.request("GET", "/api/v1/calls/pg-1/recordings")
        assert status == 200 and [item["format"] for item in listed["recordings"]] == ["wav"], listed
        assert daemon.request("POST", "/RESTCall/call", call_body("pg-2", "pg2", nginx, sip_domain, account))[0] == 200
        daemon.wait_state("pg-2", {"ESTABLISHED"})
        wait_until(lambda: _rows(postgres, "daemon").get("pg-2", ("",))[0] == "ESTABLISHED", 10, "pg-2 stored")
        daemon.kill()
        daemon.start()
        status, found = daemon.request("GET", "/api/v1/history")
        assert status == 200 and found["total"] == 2
        states = {call["callId"]: (call["state"], call["reason"]) for call in found["calls"]}
        assert states["pg-1"][0] == "FINISH" and states["pg-2"] == ("FAILED", RESTARTED)
        assert _rows(postgres, "daemon")["pg-2"][:2] == ("FAILED", RESTARTED)
        assert PASSWORD not in daemon.log()
    finally:
        daemon.stop()


def test_an_unreachable_server_stops_start_up_naming_it_without_the_password(tmp_path: Path) -> None:
    port = free_port()
    url = f"postgresql://bridge:{PASSWORD}@127.0.0.1:{port}/bridge"
    config = tmp_path / "bridge.toml"
    config.write_text(f'[rest]\nlisten = "127.0.0.1:{free_port()}"\n[history]\nurl = "{url}"\n')
    started = subprocess.run([sys.executable, "-m", "bridge", "--config", str(config)], capture_output=True,
                             text=True, timeout=60, env=dict(os.environ))  # fmt: skip
    last = started.stderr.strip().splitlines()[-1]
    print(f"\nunreachable PostgreSQL: exit {started.returncode}: {last}")
    assert started.returncode == 1
    assert f"history.url: cannot connect to postgresql://bridge@127.0.0.1:{port}/bridge" in last
    assert PASSWORD not in started.stderr + started.stdout
