"""A media worker process: RTP in, playout, encode and RTMP out for the calls it is given.

The daemon (:mod:`bridge.workers.pool`) starts it as ``python -m bridge.media.worker_process FD
SOCKETS_FD`` with one end of a Unix socket pair and talks :mod:`bridge.channel.protocol` over
it; on the second pair it passes the ingest WebSockets it hands over. The
worker has its own event loop and opens the RTP sockets of its calls itself. It ignores
SIGINT, SIGTERM and SIGHUP (systemd and a terminal may signal the whole process group;
the daemon stops calls in order, then closes the socket; reloads arrive as messages)
and exits when the socket closes, so a daemon that dies takes its workers with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import ssl
import sys
import time
from dataclasses import dataclass, field

import uvloop

from bridge.channel import protocol as p
from bridge.channel.counters import MediaCounters
from bridge.channel.protocol import StreamState
from bridge.config import BridgeConfig
from bridge.media import stage_profile
from bridge.media.call_media import CallMedia
from bridge.media.encoder import new_encoder
from bridge.media.file_writer import FileWriter
from bridge.media.rtp_endpoint import RtpEndpoint
from bridge.media.setup_queue import SetupQueue
from bridge.media.slate import SlateCache
from bridge.media.stream_socket import AdoptedStreams
from bridge.media.ticker import Ticker
from bridge.net.tls import client_context
from bridge.ops.logs import REDACTOR, configure_logging
from bridge.ops.looplag import LoopLagMonitor
from rtp import fast
from rtp.ports import PortsExhausted

log = logging.getLogger("bridge.worker")
STATS_INTERVAL = 1.0
COLLECT_AFTER_STOP_SECONDS = 5.0


@dataclass
class WorkerCall:
    endpoint: RtpEndpoint | None  # None: an ingest call, fed by FeedAudio frames
    video_endpoint: RtpEndpoint | None = None
    media: CallMedia | None = None
    task: asyncio.Task[None] | None = None
    secrets: list[str] = field(default_factory=list)


class MediaWorker:
    """The calls of this process, driven by messages from the daemon."""

    def __init__(
        self, index: int, config: BridgeConfig, writer: asyncio.StreamWriter, sockets: socket.socket | None = None
    ) -> None:
        self.index = index
        self.config = config
        self._writer = writer
        self.rtmp_tls: ssl.SSLContext = client_context(config.rtmp.tls_ca_file, config.rtmp.tls_verify, "rtmp")
        self.calls: dict[str, WorkerCall] = {}
        self.lag = LoopLagMonitor()
        self.slates = SlateCache()  # slate GOPs, encoded once per picture and settings in this worker
        self.ticker = Ticker()  # one timer for every call's media tick
        self.setups = SetupQueue()  # call set-ups, one per loop turn
        self.files = FileWriter()  # every recording's file I/O, on its own thread
        self.streams = AdoptedStreams(sockets, self.send)  # ingest WebSockets handed over by the daemon
        self._collection: asyncio.TimerHandle | None = None  # the full collection after calls ended
        self.gc_ms = 0.0  # how long the last one took
        self.group: asyncio.TaskGroup | None = None
        self._loop = asyncio.get_running_loop()

    def send(self, message: p._Message) -> None:
        if not self._writer.is_closing():
            self._writer.write(p.encode(message))

    def handle(self, message: p.ToWorker | p.FeedAudio) -> None:
        """Dispatch one message; never raises (a bad request costs that call, not the worker)."""
        assert self.group is not None
        if isinstance(message, p.FeedAudio):
            self._feed(message)
        elif isinstance(message, p.Configure):
            self.config = BridgeConfig.model_validate(message.config)
            logging.getLogger().setLevel(self.config.log.level.upper())
        elif isinstance(message, p.OpenEndpoint):
            self.group.create_task(self._open(message))
        elif isinstance(message, p.StartMedia):
            self._start(message)
        elif isinstance(message, p.UpdateMedia):
            self._update(message)
        elif isinstance(message, p.NameTrack):
            self._name_track(message)
        elif isinstance(message, p.AdoptStream):
            call = self.calls.get(message.call)
            self.streams.adopt(message, call.media if call is not None else None)
        elif isinstance(message, p.CloseStream):
            self.streams.close(message.call, message.code, message.reason)
        elif isinstance(message, p.Listen):
            self._listen(message)
        elif isinstance(message, p.SendDtmf):
            self._dtmf(message)
        elif isinstance(message, p.StopMedia):
            self.group.create_task(self._stop(message.call))

    async def _open(self, message: p.OpenEndpoint) -> None:
        try:
            endpoint = await RtpEndpoint.open(message.ports, message.host)
        except PortsExhausted as exc:
            self.send(p.EndpointOpened(call=message.call, port=0, error=str(exc)))
            return
        video = None
        if message.video_ports:
            try:
                video = await RtpEndpoint.open(message.video_ports, message.host)
            except PortsExhausted as exc:
                endpoint.close()
                self.send(p.EndpointOpened(call=message.call, port=0, error=f"video: {exc}"))
                return
        self.calls[message.call] = WorkerCall(endpoint, video)
        self.send(p.EndpointOpened(call=message.call, port=endpoint.port, video_port=video.port if video else 0))

    def _feed(self, message: p.FeedAudio) -> None:
        call = self.calls.get(message.call)
        if call is not None and call.media is not None:
            call.media.push_feed(message.track, message.timestamp, message.payload, self._loop.time())

    def _start(self, message: p.StartMedia) -> None:
        if message.feed and message.call not in self.calls:
            self.calls[message.call] = WorkerCall(None)  # an ingest call needs no socket
        call = self.calls.get(message.call)
        if call is None or call.media is not None:
            log.warning("worker %d: start for unknown or started call %s ignored", self.index, message.call)
            return
        REDACTOR.register(*message.secrets, owner=message.call)
        call.secrets = message.secrets
        call_id = message.call
        call.media = CallMedia(
            self.config,
            self.rtmp_tls,
            call.endpoint,
            message.peer,
            message.destinations,
            message.send_silence,
            new_encoder,
            lambda event: self.send(p.MediaEvent(call=call_id, event=event)),
            lambda index, state, reason: self._stream_state(call_id, index, state, reason),
            self.slates,
            self.ticker,
            call.video_endpoint,
            stereo=message.stereo,
            record=message.record,
            writer=self.files,
            setups=self.setups,
        )
        assert self.group is not None
        call.task = self.group.create_task(self._run_media(call_id, call.media))

    async def _run_media(self, call_id: str, media: CallMedia) -> None:
        try:
            reason = await media.run()
        except Exception as exc:  # a defect or an encoder failure costs this call only
            log.exception("worker %d: call %s: media failed", self.index, call_id)
            reason = f"media failed: {type(exc).__name__}"
        self.send(p.MediaEnded(call=call_id, reason=reason))

    def _update(self, message: p.UpdateMedia) -> None:
        call = self.calls.get(message.call)
        if call is not None and call.media is not None:
            call.media.update(message.peer)

    def _name_track(self, message: p.NameTrack) -> None:
        call = self.calls.get(message.call)
        if call is not None and call.media is not None:
            call.media.name_track(message.index, message.name)

    def _listen(self, message: p.Listen) -> None:
        call = self.calls.get(message.call)
        if call is None or call.media is None:
            return
        call_id = message.call
        call.media.listen = (
            (lambda frames: self.send(p.ListenAudio(call=call_id, frames=frames))) if message.on else None
        )

    def _dtmf(self, message: p.SendDtmf) -> None:
        call = self.calls.get(message.call)
        if call is not None and call.media is not None:
            call.media.send_dtmf(message.digits, message.duration_ms)

    async def _stop(self, call_id: str) -> None:
        self.streams.detach(call_id)
        call = self.calls.pop(call_id, None)
        if call is None:
            self.send(p.MediaStopped(call=call_id, counters=None))
            return
        counters: MediaCounters | None = None
        try:
            if call.task is not None:
                call.task.cancel()  # takes effect at the next await: the flush below still publishes
            if call.media is not None:
                await call.media.close()
                counters = call.media.counters()
            if call.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await call.task
        except Exception:
            log.exception("worker %d: call %s: error while stopping media", self.index, call_id)
        finally:
            if call.endpoint is not None:
                call.endpoint.close()
            if call.video_endpoint is not None:
                call.video_endpoint.close()
            REDACTOR.unregister(*call.secrets, owner=call_id)
        self.send(p.MediaStopped(call=call_id, counters=counters))
        self._collect_soon()

    def _collect_soon(self) -> None:
        """A full garbage collection a few seconds after calls end (one for a burst of them).

        A call's media objects reference each other (callbacks hold their owners), so they are
        freed by the cyclic collector, not by reference counting; with the collector tuned to
        stay off the media path (:func:`tune_garbage_collector`) a full collection would come
        only after some twenty million allocations, and ended calls' encoders and buffers piled
        up meanwhile (the soak measured 13 MiB a minute at 20 calls replaced every 30 s).
        """
        if self._collection is None:
            self._collection = asyncio.get_running_loop().call_later(COLLECT_AFTER_STOP_SECONDS, self._collect)

    def _collect(self) -> None:
        self._collection = None
        started = time.perf_counter()
        gc.collect()
        self.gc_ms = round((time.perf_counter() - started) * 1000, 2)

    def _stream_state(self, call_id: str, index: int, state: StreamState, reason: str) -> None:
        counters = self._counters(call_id)
        self.send(
            p.StreamStateChanged(call=call_id, destination=index, state=state.value, reason=reason, counters=counters)
        )

    def _counters(self, call_id: str) -> MediaCounters | None:
        call = self.calls.get(call_id)
        return call.media.counters() if call is not None and call.media is not None else None

    async def report_stats(self) -> None:
        """Every call's counters, loop lag and resource use, once a second."""
        while True:
            await asyncio.sleep(STATS_INTERVAL)
            self.send(self.stats_message())
            await self._writer.drain()

    def stats_message(self) -> p.WorkerStats:
        calls = {call_id: call.media.counters() for call_id, call in self.calls.items() if call.media is not None}
        return p.WorkerStats(
            worker=self.index,
            calls=calls,
            loop_lag_ms=self.lag.summary(),
            cpu_seconds=time.process_time(),
            rss_bytes=_rss_bytes(),
            tasks=len(asyncio.all_tasks()),
            gc_ms=self.gc_ms,
            streams=len(self.streams),
            fast_path=fast.FAST is not None,
            stages=stage_profile.report(),
        )

    async def stop_all(self) -> None:
        """The daemon went away: unpublish and close everything, quickly."""
        await asyncio.gather(*(self._stop(call_id) for call_id in list(self.calls)), return_exceptions=True)


GC_THRESHOLD = (50_000, 20, 20)


def tune_garbage_collector() -> None:
    """Keep the cyclic garbage collector off the media path.

    The media path allocates many short-lived containers (tuples, lists, small objects) and
    makes almost no reference cycles. With the default thresholds (700, 10, 10) the collector
    ran every few milliseconds and, measured with py-spy under 50 calls per worker, took about a
    third of the worker's CPU, mostly walking long-lived objects again and again. What exists
    after start-up (modules, codecs, tables) is frozen out of collection; collections of the
    young generation happen every 50,000 allocations, older ones correspondingly rarely.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def _rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:  # procfs: answered from memory, never blocks
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def serve_worker(fd: int, sockets_fd: int | None = None) -> None:
    """Read the configuration, report ready, then serve messages until the socket closes.

    ``sockets_fd``: the descriptor channel, on which the daemon passes the ingest WebSockets it
    hands over (:class:`bridge.channel.protocol.AdoptStream`).
    """
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=fd))
    sockets = socket.socket(fileno=sockets_fd) if sockets_fd is not None else None
    if sockets is not None:
        sockets.setblocking(False)
    first = await p.read_frame(reader)
    if first is None:
        return
    configure = p.decode_to_worker(first)
    if not isinstance(configure, p.Configure):
        raise p.ProtocolError(f"expected configure first, got {configure.type}")
    config = BridgeConfig.model_validate(configure.config)
    configure_logging(config.log.level, config.log.format)
    # Open the codec once before taking calls: the first open in a process is slow.
    await asyncio.to_thread(new_encoder, config.media.default_output())
    tune_garbage_collector()
    log.info("worker %d: media path: %s", configure.worker, fast.describe())
    worker = MediaWorker(configure.worker, config, writer, sockets)
    worker.files.start()
    worker.send(p.WorkerReady(worker=configure.worker, pid=os.getpid()))
    async with asyncio.TaskGroup() as group:
        worker.group = group
        stats = group.create_task(worker.report_stats())
        lag = group.create_task(worker.lag.run())
        while (frame := await p.read_frame(reader)) is not None:
            worker.handle(p.decode_to_worker(frame))
        log.info("worker %d: daemon closed the channel; stopping %d call(s)", worker.index, len(worker.calls))
        stats.cancel()
        lag.cancel()
        worker.streams.close_all()  # going away (1001), before each call's stop would close its stream as failed
        await worker.stop_all()
        worker.ticker.close()
        worker.setups.close()
        if worker._collection is not None:
            worker._collection.cancel()
    await asyncio.to_thread(worker.files.stop)
    writer.close()
    if sockets is not None:
        sockets.close()


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the daemon's business, not ours
        signal.signal(signum, signal.SIG_IGN)
    stage_profile.install()  # only with BRIDGE_STAGE_PROFILE=1 (python -m bench.stages)
    sockets_fd = int(sys.argv[2]) if len(sys.argv) > 2 else None
    uvloop.run(serve_worker(int(sys.argv[1]), sockets_fd))  # libuv: UDP receive and timers in C, not Python
