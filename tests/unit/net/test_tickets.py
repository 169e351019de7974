"""Tickets for URLs: one call, one purpose, a short life; forged or altered ones are refused."""

from __future__ import annotations

import base64
import json

from bridge.net.tickets import Tickets

NOW = 1_800_000_000.0


def test_a_ticket_allows_its_call_and_purpose_until_it_expires() -> None:
    tickets = Tickets(b"k" * 32)
    ticket, expires = tickets.issue("call-1", "listen", NOW, ttl=60)
    assert expires == NOW + 60
    assert tickets.check(ticket, "call-1", "listen", NOW + 59) is None
    assert tickets.check(ticket, "call-1", "listen", NOW + 60) == "the ticket has expired (ask for a new one)"
    assert tickets.check(ticket, "call-2", "listen", NOW) == "the ticket is for another call"
    assert tickets.check(ticket, "call-1", "recordings", NOW) == "the ticket is for listen, not recordings"


def test_altered_forged_and_foreign_tickets_are_refused() -> None:
    tickets = Tickets(b"k" * 32)
    ticket, _ = tickets.issue("call-1", "listen", NOW, ttl=60)
    payload, signature = ticket.split(".")
    longer = base64.urlsafe_b64encode(json.dumps({"c": "call-1", "p": "listen", "e": NOW + 9999}).encode()).decode()
    for bad in (f"{longer.rstrip('=')}.{signature}", f"{payload}.{signature[:-2]}AA", "", "x.y", payload):
        assert tickets.check(bad, "call-1", "listen", NOW) == "the ticket is not valid (ask for a new one)"
    other, _ = Tickets(b"o" * 32).issue("call-1", "listen", NOW, ttl=60)  # another daemon's (or before a restart)
    assert tickets.check(other, "call-1", "listen", NOW) is not None
