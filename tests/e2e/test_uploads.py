"""Recordings uploaded when the call ends: to Azurite (Azure Blob Storage's emulator) and by HTTP PUT.

The judges are the stores: the blob's name, size and MD5 as Azure's own SDK reads them back (and
its bytes against the local file's), the bytes and headers the PUT server received; the webhook's
signature is checked with an HMAC computed here from the documented scheme.
"""

from __future__ import annotations

import base64
import hashlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from tests.support.audio import dominant_frequency
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.secrets import register_secret
from tests.support.storage import DEV_KEY, Azurite, PutServer
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e
WEBHOOK_SECRET = "uploads-webhook-secret-0123456789"
PRESIGNED = "X-Amz-Signature=3f1c0e9a7b5d4c2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e"
register_secret(WEBHOOK_SECRET, DEV_KEY, PRESIGNED)


@pytest.fixture(scope="module")
def azurite(workdir: Path) -> Iterator[Azurite]:
    store = Azurite(workdir)
    yield store
    store.stop()


@pytest.fixture
def webhooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    yield receiver
    receiver.stop()


def upload_daemon(workdir: Path, upload: str, webhooks: WebhookReceiver) -> tuple[BridgeDaemon, Path]:
    directory = workdir / "recordings"
    extra = (
        f'\n[recording]\ndirectory = "{directory}"\nformats = ["wav", "m4a"]\n{upload}'
        f'\n[apps.local]\nurl = "{webhooks.url}"\nsecret = "{WEBHOOK_SECRET}"\n'
    )
    return BridgeDaemon(workdir, extra_config=extra), directory


def record_call(daemon: BridgeDaemon, call_id: str, nginx: NginxRtmp, domain: Kamailio, account: SipAccount) -> None:
    status, reply = daemon.request("POST", "/RESTCall/call", call_body(call_id, call_id, nginx, domain, account))
    assert status == 200, reply
    daemon.wait_state(call_id, {"ESTABLISHED"})
    time.sleep(3.0)
    daemon.request("POST", "/RESTCall/terminate", {"callId": call_id})
    daemon.wait_gone(call_id)


def uploads(daemon: BridgeDaemon, call_id: str) -> dict[str, dict[str, Any]]:
    status, body = daemon.request("GET", f"/api/v1/calls/{call_id}/recordings")
    assert status == 200, body
    return {entry["name"]: entry for entry in body["recordings"]}


def all_uploaded(daemon: BridgeDaemon, call_id: str) -> bool:
    found = uploads(daemon, call_id)
    return len(found) == 2 and all((e["upload"] or {}).get("state") == "uploaded" for e in found.values())


@pytest.fixture
def azure_daemon(tmp_path: Path, azurite: Azurite, webhooks: WebhookReceiver) -> Iterator[tuple[BridgeDaemon, Path]]:
    upload = f'\n[recording.upload]\nkind = "azure"\nazure_connection_string = "{azurite.connection_string}"\n'
    daemon, directory = upload_daemon(tmp_path, upload, webhooks)
    yield daemon, directory
    daemon.stop()


def container_of(azurite: Azurite) -> ContainerClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client("recordings")


def local(directory: Path, name: str) -> Path:
    (path,) = directory.rglob(name)
    return path


def test_azure_blobs_have_the_recordings_name_size_and_md5(
    azure_daemon: tuple[BridgeDaemon, Path],
    azurite: Azurite,
    webhooks: WebhookReceiver,
    nginx: NginxRtmp,
    far_end: Baresip,
    sip_domain: Kamailio,
    account: SipAccount,
) -> None:
    daemon, directory = azure_daemon
    record_call(daemon, "az-1", nginx, sip_domain, account)
    wait_until(lambda: all_uploaded(daemon, "az-1"), 30, "both files uploaded")
    listed = uploads(daemon, "az-1")
    container = container_of(azurite)
    blobs = {blob.name: blob for blob in container.list_blobs()}
    for name, entry in listed.items():
        path = local(directory, name)
        relative = str(path.relative_to(directory))
        blob = blobs[relative]  # the blob is named like the file below recording.directory
        data = path.read_bytes()
        assert blob.size == len(data) and bytes(blob.content_settings.content_md5) == hashlib.md5(data).digest()
        assert container.download_blob(relative).readall() == data
        assert entry["upload"]["url"].endswith(f"/recordings/{relative}") and "?" not in entry["upload"]["url"]
        assert entry["upload"]["md5"] == hashlib.md5(data).hexdigest()
    wait_until(lambda: len(uploaded_hooks(webhooks, "az-1")) == 2, 10, "two recording.uploaded webhooks")
    hooks = uploaded_hooks(webhooks, "az-1")
    assert {hook["name"] for hook in hooks} == set(listed) and webhooks.bad_signatures == 0
    assert all("AccountKey" not in str(hook) and "?" not in hook["url"] for hook in hooks)


def uploaded_hooks(webhooks: WebhookReceiver, call_id: str) -> list[dict[str, Any]]:
    return [e for e in webhooks.events if e.get("type") == "recording.uploaded" and e["callId"] == call_id]


def test_an_upload_to_a_stopped_store_is_retried_until_it_returns(
    azure_daemon: tuple[BridgeDaemon, Path],
    azurite: Azurite,
    nginx: NginxRtmp,
    far_end: Baresip,
    sip_domain: Kamailio,
    account: SipAccount,
) -> None:
    daemon, directory = azure_daemon
    azurite.stop()
    try:
        stopped_at = time.monotonic()
        record_call(daemon, "az-retry", nginx, sip_domain, account)

        def retrying() -> bool:
            states = [(e["upload"] or {}) for e in uploads(daemon, "az-retry").values()]
            return len(states) == 2 and all(s.get("state") == "retrying" and s["attempts"] >= 2 for s in states)

        wait_until(retrying, 20, "uploads retrying while the store is down")
        errors = {e["upload"]["error"] for e in uploads(daemon, "az-retry").values()}
    finally:
        azurite.start()
    back_at = time.monotonic()
    waited = wait_until(lambda: all_uploaded(daemon, "az-retry"), 90, "uploaded after the store returned")
    attempts = {name: e["upload"]["attempts"] for name, e in uploads(daemon, "az-retry").items()}
    print(
        f"\nstore down {back_at - stopped_at:.1f} s: errors {sorted(errors)}; uploaded {waited:.1f} s after it "
        f"returned, attempts {attempts}"
    )
    container = container_of(azurite)
    for name in attempts:
        path = local(directory, name)
        assert container.download_blob(str(path.relative_to(directory))).readall() == path.read_bytes()
    assert all(count >= 3 for count in attempts.values())


def test_http_put_sends_the_files_bytes_and_deletes_them_after_a_verified_upload(
    tmp_path: Path,
    webhooks: WebhookReceiver,
    nginx: NginxRtmp,
    far_end: Baresip,
    sip_domain: Kamailio,
    account: SipAccount,
) -> None:
    server = PutServer(fail_first=1)
    url = f"http://127.0.0.1:{server.port}/bucket/{{date}}/{{callId}}/{{track}}.{{ext}}?{PRESIGNED}"
    upload = f'\n[recording.upload]\nkind = "http"\nhttp_url = "{url}"\ndelete_after_upload = true\n'
    daemon, directory = upload_daemon(tmp_path, upload, webhooks)
    try:
        record_call(daemon, "put-1", nginx, sip_domain, account)
        wait_until(lambda: len(server.received) == 2, 30, "two PUTs stored")
        wait_until(
            lambda: all(e["state"] == "deleted" for e in uploads(daemon, "put-1").values()), 10, "local files deleted"
        )
        # read once the files are done with: just after the call ends, a file's stored row may still
        # hold the size noted when it opened (a run read 0 bytes for the m4a)
        sizes = {name: entry["bytes"] for name, entry in uploads(daemon, "put-1").items()}
        day = time.strftime("%Y-%m-%d")
        assert {item.path.split("?")[0] for item in server.received} == {
            f"/bucket/{day}/put-1/mix.wav",
            f"/bucket/{day}/put-1/mix.m4a",
        }
        for item in server.received:
            assert item.path.endswith("?" + PRESIGNED)  # the pre-signed query reached the store
            name = "put-1_mix." + item.path.split("?")[0].rsplit(".", 1)[1]
            assert len(item.body) == sizes[name]
            assert base64.b64decode(item.headers["Content-MD5"]) == hashlib.md5(item.body).digest()
            # the bytes are the recording: FFmpeg plays them as 3 s of the far end's 440 Hz
            with av.open(io.BytesIO(item.body)) as container:
                stream = container.streams.audio[0]
                samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
            assert abs(len(samples) / stream.rate - 3.0) < 0.3, name
            assert (
                abs(dominant_frequency(samples[stream.rate : 2 * stream.rate].astype(np.float32), stream.rate) - 440)
                < 5
            )
        assert not list(directory.rglob("put-1_*")), "deleted only after the store confirmed the MD5"
        assert server.attempts == 3  # one 503, retried
        entries = uploads(daemon, "put-1")
        assert all("?" not in e["upload"]["url"] for e in entries.values())
    finally:
        daemon.stop()
        server.stop()
