"""A stranger's SIP text never reaches the log before the drop policy has run (review finding 6)."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from bridge.sip.agent import SipAgent
from bridge.sip.inbound import InboundPolicy
from bridge.sip.transport import SipTransport

STRANGERS = (
    b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-1\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: forged-1\r\nCSeq: 1 OPTIONS\r\n"
    b"Subject: 2026-12-07 00:00:00,000 ERROR bridge.daemon: FORGED LINE\r\nContent-Length: 0\r\n\r\n"
)


@pytest.mark.parametrize("mode", ["drop", "reply"])
async def test_a_strangers_text_is_logged_only_when_the_policy_keeps_it(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bridge.sip")
    sip = await SipTransport.listen(SipAgent(policy=InboundPolicy(mode)), "127.0.0.1", 0)  # type: ignore[arg-type]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(STRANGERS, sip.local_address)
        await asyncio.sleep(0.2)
    finally:
        sip.close()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    # "drop": dropped unread, nothing of it logged; "reply": answered, so logged (the check can see it)
    assert ("FORGED LINE" in logged) is (mode == "reply")
