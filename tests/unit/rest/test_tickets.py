"""Tickets in URLs: they open one call's listen stream or recordings, for a short time, and nothing else."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from rest.auth import hash_token
from rest.listen import TICKETS_KEY
from tests.support.ports import free_even_range
from tests.support.rest_app import body, bridge_client

TOKEN = "tickets-unit-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    tokens = json.dumps([{"sha256": hash_token(TOKEN), "scope": "full", "name": "ops"}])
    async with bridge_client(
        free_even_range(100), BRIDGE_AUTH__REQUIRED="always", BRIDGE_AUTH__TOKENS=tokens
    ) as test_client:
        assert (await test_client.post("/api/v1/calls", json=body(), headers=AUTH)).status == 201
        yield test_client


async def test_a_ticket_from_the_api_opens_its_calls_listen_url(client: TestClient) -> None:  # type: ignore[type-arg]
    reply = await client.get("/api/v1/calls/c1/tickets?purpose=listen", headers=AUTH)
    ticket = await reply.json()
    assert reply.status == 200 and ticket["expiresAt"] > time.time() + 50
    assert (await client.get("/api/v1/calls/c1/listen")).status == 401  # no token, no ticket
    listen = await client.get(ticket["url"])
    assert listen.status == 409, await listen.text()  # past authentication: the call has no audio yet
    assert "no live audio" in (await listen.json())["error"]["message"]


@pytest.mark.parametrize(
    ("issued", "path", "reason"),
    [
        (("c1", "listen", -120.0), "/api/v1/calls/c1/listen", "the ticket has expired"),
        (("c2", "listen", 0.0), "/api/v1/calls/c1/listen", "the ticket is for another call"),
        (("c1", "recordings", 0.0), "/api/v1/calls/c1/listen", "the ticket is for recordings, not listen"),
        (("c1", "listen", 0.0), "/api/v1/calls/c1/recordings/c1_mix.wav", "the ticket is for listen, not recordings"),
        (("c1", "listen", 0.0), "/api/v1/calls/c1", "a ticket opens only a call's listen stream and recordings"),
        (("c1", "listen", 0.0), "/api/v1/calls/c1/dtmf", "a ticket opens only a call's listen stream and recordings"),
    ],
)
async def test_tickets_are_refused_outside_their_call_purpose_and_time(
    client: TestClient,  # type: ignore[type-arg]
    issued: tuple[str, str, float],
    path: str,
    reason: str,
) -> None:
    call_id, purpose, age = issued
    ticket, _ = client.server.app[TICKETS_KEY].issue(call_id, purpose, time.time() + age, ttl=60)
    reply = await client.get(f"{path}?ticket={ticket}")
    error = (await reply.json())["error"]
    assert reply.status == 403 and error["message"].startswith(reason), error
