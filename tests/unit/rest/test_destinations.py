"""Destinations through the REST app: outputs, presets, field errors, 409 per destination, masked keys."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.ports import free_even_range
from tests.support.rest_app import body, bridge_client

KEY_A, KEY_B = "abcd-efgh-ijkl-mnop-qrst", "zyxw-vuts-rqpo-nmlk-jihg"


def outputs_body(*destinations: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = body(**changes)
    del data["rtmpUrl"], data["rtmpStream"]
    data["outputs"] = list(destinations)
    return data


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    private = json.dumps({"reveal_stream_names": True})
    async with bridge_client(free_even_range(100), BRIDGE_APPS__PRIVATE=private, BRIDGE_APPS__K="{}") as test_client:
        yield test_client


async def post(client: TestClient, data: dict[str, Any], path: str = "/api/v1/calls") -> tuple[int, dict[str, Any]]:  # type: ignore[type-arg]
    reply = await client.post(path, json=data)
    return reply.status, await reply.json()


async def test_two_destinations_are_shown_masked_and_each_is_unique(client: TestClient) -> None:  # type: ignore[type-arg]
    a = {"rtmpUrl": "rtmp://127.0.0.1:1/live", "rtmpStream": KEY_A}
    b = {"rtmpUrl": "rtmp://127.0.0.1:2/live", "rtmpStream": KEY_B, "video": {"mode": "slate", "fps": 5}}
    status, created = await post(client, outputs_body(a, b))
    assert status == 201, created
    shown = [(d["rtmpTarget"], d["video"]) for d in created["destinations"]]
    assert shown == [
        ("rtmp://127.0.0.1:1/live/••••qrst", "none"),
        ("rtmp://127.0.0.1:2/live/••••jihg", "slate 1280x720 5 fps, key frame every 2 s"),
    ]
    assert created["rtmpTarget"] == "rtmp://127.0.0.1:1/live/••••qrst"
    status, conflict = await post(client, outputs_body({**a, "rtmpStream": "other"}, b, callId="c2"))
    assert status == 409 and conflict["error"]["field"] == "outputs.1.rtmpStream"
    status, twice = await post(client, outputs_body({**a, "rtmpStream": "x1"}, {**a, "rtmpStream": "x1"}, callId="c3"))
    assert status == 409 and "named twice" in twice["error"]["message"]
    listing = await (await client.get("/api/v1/calls")).text()
    for text in (json.dumps(created), json.dumps(conflict), listing):
        assert KEY_A not in text and KEY_B not in text


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (dict(outputs_body({"rtmpUrl": "rtmp://h/live", "rtmpStream": "s"}), rtmpUrl="rtmp://h/live"), "outputs"),
        ({k: v for k, v in body().items() if k != "rtmpUrl"}, "rtmpUrl"),
        (body(output={"preset": "facebook"}), "rtmpUrl"),
        (outputs_body({"rtmpUrl": "rtmp://h/live", "rtmpStream": "s", "preset": "facebook"}), "outputs.0.rtmpUrl"),
        (body(output={"video": {"mode": "slate", "image": "missing.png"}}), "output.video.image"),
        (body(output={"video": {"mode": "slate", "image": "../etc/passwd"}}), "output.video.image"),
        (body(output={"preset": "youtube", "sampleRate": 16000}), "output.sampleRate"),
        (body(output={"preset": "youtube", "video": {"mode": "none"}}), "output.video.mode"),
        (
            outputs_body(
                {"rtmpUrl": "rtmp://h/live", "rtmpStream": "s"},
                {"rtmpUrl": "rtmp://live.twitch.tv/app", "rtmpStream": "k", "video": {"keyframeSeconds": 3}},
            ),
            "outputs.1.video.keyframeSeconds",
        ),
        (body(output={"video": {"fps": 60}}), "output.video.fps"),
        (body(rtmpUrl="rtmp://user@h/live"), "rtmpUrl"),
        (body(unknownField=1), "unknownField"),
    ],
)
async def test_refusals_name_the_field(client: TestClient, data: dict[str, Any], field: str) -> None:  # type: ignore[type-arg]
    status, refused = await post(client, data)
    assert status == 400 and refused["error"]["field"] == field, refused


async def test_the_original_contract_keeps_one_lenient_destination(client: TestClient) -> None:  # type: ignore[type-arg]
    status, created = await post(client, body(rtmpStream=KEY_A, unknownField=1), "/RESTCall/call")
    assert status == 200 and created["rtmpTarget"] == "rtmp://127.0.0.1:1/live/••••qrst"
    status, refused = await post(
        client, outputs_body({"rtmpUrl": "rtmp://h/live", "rtmpStream": "s"}), "/RESTCall/call"
    )
    assert status == 400 and refused["error"]["field"] == "rtmpUrl"


async def test_an_app_can_reveal_its_stream_names(client: TestClient) -> None:  # type: ignore[type-arg]
    data = body(rtmpStream="webinar-42", connection={"appKey": "private"})
    status, created = await post(client, data)
    assert status == 201 and created["rtmpTarget"] == "rtmp://127.0.0.1:1/live/webinar-42"
    status, masked = await post(client, body(callId="c9", rtmpStream="webinar-43"))
    assert status == 201 and masked["rtmpTarget"] == "rtmp://127.0.0.1:1/live/••••"
