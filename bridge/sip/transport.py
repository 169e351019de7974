"""The asyncio driver for :class:`SipAgent`: one UDP socket, one re-armed timer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from bridge.sip.agent import SipAgent
from bridge.sip.call import OutboundCall
from bridge.sip.events import CallEvent
from bridge.sip.registration import Registration, RegistrationEvent

log = logging.getLogger("bridge.sip")

Endpoint = tuple[str, int]
EventHandler = Callable[[CallEvent | RegistrationEvent], None]


class SipTransport(asyncio.DatagramProtocol):
    """Feeds datagrams and timer ticks to the agent, then flushes what it produced."""

    def __init__(self, agent: SipAgent) -> None:
        self.agent = agent
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._handlers: dict[str, EventHandler] = {}

    @classmethod
    async def listen(cls, agent: SipAgent, host: str, port: int) -> SipTransport:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(lambda: cls(agent), local_addr=(host, port))
        return protocol

    @property
    def local_address(self) -> Endpoint:
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return (host, port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's selector datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("SIP from %s:%d\n%s", addr[0], addr[1], data.decode(errors="replace"))
        self.agent.receive_datagram(data, (addr[0], addr[1]), self._loop.time())
        self._flush()

    def error_received(self, exc: Exception) -> None:
        log.warning("SIP socket error: %s", exc)

    def place_call(self, call: OutboundCall, on_event: EventHandler) -> None:
        self._handlers[call.call_id] = on_event
        self.agent.add_call(call, self._loop.time())
        self._flush()

    def register(self, registration: Registration, on_event: EventHandler) -> None:
        self._handlers[registration.call_id] = on_event
        self.agent.add_registration(registration, self._loop.time())
        self._flush()

    def unregister(self, call_id: str) -> None:
        self.agent.unregister(call_id, self._loop.time())
        self._flush()

    def hangup(self, call_id: str) -> None:
        self.agent.hangup(call_id, self._loop.time())
        self._flush()

    def forget(self, call_id: str) -> None:
        """Stop delivering events for a call whose owner has gone."""
        self._handlers.pop(call_id, None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()

    def _on_timer(self) -> None:
        self._timer = None
        self.agent.handle_timer(self._loop.time())
        self._flush()

    def _flush(self) -> None:
        """Send every queued datagram, deliver events, re-arm the single timer."""
        if self._transport is not None:
            for data, destination in self.agent.outbox:
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("SIP to %s:%d\n%s", *destination, data.decode(errors="replace"))
                self._transport.sendto(data, destination)
        self.agent.outbox.clear()
        for dropped in self.agent.dropped:
            log.info("SIP from %s:%s ignored: %s", *dropped.source, dropped.reason)
        self.agent.dropped.clear()
        events, self.agent.events = self.agent.events, []
        for call_id, event in events:
            handler = self._handlers.get(call_id)
            if handler is not None:
                handler(event)
        self._rearm()

    def _rearm(self) -> None:
        deadline = self.agent.get_timer()
        if self._timer is not None:
            if deadline is not None and self._timer.when() == deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)
