"""The asyncio driver for :class:`SipAgent`: UDP socket, TCP listener, TCP/TLS connections.

It feeds datagrams, stream messages and timer ticks to the agent, then flushes
what the agent produced and re-arms one timer.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from bridge.net.connlimit import ConnectionLimiter
from bridge.sip.addressing import Destination, Transport, udp
from bridge.sip.agent import SipAgent
from bridge.sip.call import OutboundCall
from bridge.sip.connections import ConnectionPool
from bridge.sip.events import CallEvent
from bridge.sip.log_redaction import redact_message
from bridge.sip.registration import Registration, RegistrationEvent

log = logging.getLogger("bridge.sip")

EventHandler = Callable[[CallEvent | RegistrationEvent], None]


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.owner.received(data, udp(addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.warning("SIP UDP socket error: %s", exc)


class SipTransport:
    """One SIP endpoint: UDP and TCP on the same port, TLS as a client."""

    def __init__(self, agent: SipAgent, tls: ssl.SSLContext | None) -> None:
        self.agent = agent
        self._loop = asyncio.get_running_loop()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.Server | None = None
        self._pool = ConnectionPool(self.received, self._connection_failed, tls)
        self._timer: asyncio.TimerHandle | None = None
        self._handlers: dict[str, EventHandler] = {}

    @classmethod
    async def listen(cls, agent: SipAgent, host: str, port: int, tls: ssl.SSLContext | None = None) -> SipTransport:
        """Bind UDP and TCP on ``host:port`` (port 0: the same free port for both)."""
        transport = cls(agent, tls)
        for _ in range(20):
            udp_transport, _ = await transport._loop.create_datagram_endpoint(
                lambda: _Datagrams(transport), local_addr=(host, port)
            )
            bound = udp_transport.get_extra_info("sockname")[1]
            try:
                transport._tcp_server = await asyncio.start_server(transport._pool.accept, host, bound)
            except OSError:
                udp_transport.close()
                if port != 0:
                    raise
                continue
            transport._udp = udp_transport
            return transport
        raise OSError(f"no port on {host} is free for both SIP UDP and TCP")

    def configure_tcp(self, max_connections: int, max_per_source: int, idle_seconds: float) -> None:
        """Limits of the TCP listener (sip.tcp_max_connections, tcp_max_per_source, tcp_idle_seconds)."""
        self._pool.limiter.configure(max_connections, max_per_source)
        self._pool.idle_seconds = idle_seconds

    @property
    def tcp_limiter(self) -> ConnectionLimiter:
        return self._pool.limiter

    @property
    def tcp_idle_closed(self) -> int:
        """Accepted connections closed because no complete message came within sip.tcp_idle_seconds."""
        return self._pool.idle_closed

    @property
    def local_address(self) -> tuple[str, int]:
        assert self._udp is not None
        host, port = self._udp.get_extra_info("sockname")[:2]
        return (host, port)

    def received(self, data: bytes, source: Destination) -> bool:
        """One datagram or stream message; False when it was dropped under sip.unknown_requests = "drop"."""
        kept = self.agent.receive_datagram(data, source, self._loop.time())
        if kept and log.isEnabledFor(logging.DEBUG):  # after the policy: a stranger's text is never logged
            log.debug("SIP from %s: %s", source, redact_message(data))
        self._flush()
        return kept or self.agent.policy.mode != "drop"

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

    def send_info(self, call_id: str, content_type: str, body: bytes) -> bool:
        sent = self.agent.send_info(call_id, content_type, body, self._loop.time())
        self._flush()
        return sent

    def forget(self, call_id: str) -> None:
        """Stop delivering events for a call whose owner has gone."""
        self._handlers.pop(call_id, None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pool.close()
        if self._tcp_server is not None:
            self._tcp_server.close()
        if self._udp is not None:
            self._udp.close()

    def _connection_failed(self, destination: Destination, reason: str) -> None:
        if reason:
            log.info("SIP %s", reason)
        self.agent.transport_failed(destination, self._loop.time())
        self._flush()

    def _on_timer(self) -> None:
        self._timer = None
        self.agent.handle_timer(self._loop.time())
        self._flush()

    def _flush(self) -> None:
        """Send every queued message, deliver events, re-arm the single timer."""
        while self.agent.outbox:
            outbox, self.agent.outbox = self.agent.outbox, []
            for data, destination in outbox:
                self._send(data, destination)
        summary = self.agent.policy.summary(self._loop.time())
        if summary is not None:
            log.warning("%s", summary)
        events, self.agent.events = self.agent.events, []
        for call_id, event in events:
            handler = self._handlers.get(call_id)
            if handler is not None:
                handler(event)
        self._rearm()

    def _send(self, data: bytes, destination: Destination) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("SIP to %s: %s", destination, redact_message(data))
        if destination.transport is Transport.UDP:
            if self._udp is not None:
                self._udp.sendto(data, destination.address)
            return
        try:
            self._pool.send(data, destination)
        except ValueError as exc:
            log.warning("cannot send to %s: %s", destination, exc)
            self.agent.transport_failed(destination, self._loop.time())

    def _rearm(self) -> None:
        deadline = self.agent.get_timer()
        if self._timer is not None:
            if deadline is not None and self._timer.when() == deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)
