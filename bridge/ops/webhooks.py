"""Status webhooks ("REST hooks") to the application named by each call's appKey.

Every call and stream state change (and every timeline event) is POSTed as JSON to
``[apps.<appKey>].url``, signed with HMAC-SHA256 over ``"<timestamp>.<raw body>"``
in ``X-Bridge-Signature: t=<timestamp>,v1=<hex>``. Delivery is in order per call
(one worker per call with a queue), retried with capped exponential backoff for
``webhooks.retry_seconds``, and never blocks media or signalling: the bus hands
events over without waiting, and a slow receiver only delays that call's hooks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections import deque

import aiohttp

from bridge.config import AppConfig, BridgeConfig
from bridge.ops.bus import BusEvent, EventBus

log = logging.getLogger("bridge.webhooks")
SIGNATURE_HEADER = "X-Bridge-Signature"
MAX_QUEUED_PER_CALL = 500


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, tolerance: float = 300.0) -> bool:
    """Receiver side: constant-time check of the signature and of the timestamp's freshness."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not fields.get("t", "").isdigit() or "v1" not in fields:
        return False
    timestamp = int(fields["t"])
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


class WebhookDispatcher:
    def __init__(self, config: BridgeConfig, bus: EventBus) -> None:
        self.config = config
        self._subscription = bus.subscribe(limit=10_000)
        self._queues: dict[str, deque[BusEvent]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None
        self.delivered = self.failed = self.dropped = 0

    def app_for(self, app_key: str) -> AppConfig | None:
        """The app whose webhooks this call's events go to (None: an app without a url has none)."""
        apps = self.config.apps
        app = apps.get(app_key) or apps.get(self.config.webhooks.default_app)
        return app if app is not None and app.url else None

    async def run(self) -> None:
        """Route bus events into per-call queues; each queue has one worker at a time."""
        timeout = aiohttp.ClientTimeout(total=self.config.webhooks.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._session = session
            try:
                while True:
                    self._enqueue(await self._subscription.get())
            finally:
                for worker in self._workers.values():
                    worker.cancel()
                await asyncio.gather(*self._workers.values(), return_exceptions=True)

    async def drain(self, timeout: float) -> None:
        """At shutdown: let queued events go out, for at most ``timeout`` seconds."""
        while not self._subscription.queue.empty():
            self._enqueue(self._subscription.queue.get_nowait())
        if self._workers:
            await asyncio.wait(list(self._workers.values()), timeout=timeout)

    def _enqueue(self, event: BusEvent) -> None:
        if self.app_for(event.app_key) is None:
            return
        queue = self._queues.setdefault(event.call_id, deque())
        if len(queue) >= MAX_QUEUED_PER_CALL:
            queue.popleft()
            self.dropped += 1
        queue.append(event)
        if event.call_id not in self._workers:
            task = asyncio.get_running_loop().create_task(self._drain(event.call_id))
            self._workers[event.call_id] = task

    async def _drain(self, call_id: str) -> None:
        queue = self._queues[call_id]
        try:
            while queue:
                await self._deliver(queue[0])
                queue.popleft()
        finally:
            del self._workers[call_id]
            if not queue:
                del self._queues[call_id]

    async def _deliver(self, event: BusEvent) -> None:
        """POST one event until a 2xx, or give up after webhooks.retry_seconds."""
        app = self.app_for(event.app_key)
        assert app is not None and self._session is not None
        body = json.dumps(event.to_json(), separators=(",", ":")).encode()
        deadline = time.monotonic() + self.config.webhooks.retry_seconds
        delay = 0.5
        while True:
            if await self._post(app, body):
                self.delivered += 1
                return
            if time.monotonic() + delay > deadline:
                self.failed += 1
                log.warning(
                    "webhook %s for call %s given up after %.0f s",
                    event.type,
                    event.call_id,
                    self.config.webhooks.retry_seconds,
                )
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _post(self, app: AppConfig, body: bytes) -> bool:
        assert self._session is not None
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(app.secret, int(time.time()), body)}
        try:
            async with self._session.post(app.url, data=body, headers=headers) as reply:
                return 200 <= reply.status < 300
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("webhook to %s failed: %s", app.url.split("?", 1)[0], exc)
            return False
