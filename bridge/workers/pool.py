"""Media worker processes: started, supervised, restarted, and given calls.

The daemon keeps REST, SIP and supervision; each worker process runs the media of its
calls on its own event loop (one core each). A new call goes to the worker with the
fewest calls. When a worker dies (a crash in the native encoder, the OOM killer, a
SIGKILL), only its calls are affected: their handles are told, the sessions decide what
to do, and the worker is started again (after 0.5 s, backing off to 30 s while it keeps
dying young).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from typing import Any

from bridge.channel import protocol as p
from bridge.config import BridgeConfig
from bridge.workers.admission import Admission, WorkerLoad
from bridge.workers.handle import MediaHandle
from bridge.wsmedia.stream import Handover
from rtp.ports import PortAllocator, PortsExhausted

log = logging.getLogger("bridge.workers")
# Ports reserved per open attempt. One: under a burst of new calls the reservations of calls
# still opening must not use up the range that admission counted as free (more per attempt
# made the last calls of a burst fail with "no free RTP port pair"); a port held by another
# process costs one more round trip to the worker.
CANDIDATES_PER_OPEN = 1
START_TIMEOUT = 30.0
RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
STABLE_SECONDS = 30.0
# An ingest call's frames wait at most this much in the channel to a worker; beyond it they are
# dropped (and concealed by the worker's playout) rather than held: about 2 s of 100 calls' audio.
FEED_BACKLOG_BYTES = 2 * 1024 * 1024
# Ingest frames wait this long in the daemon so that one write carries many: the messages of a
# hundred WebSockets arrive one loop iteration each, and a write per message was the daemon's
# largest cost after the WebSocket reads. The worker's playout (30 ms and up) absorbs it.
FEED_FLUSH_SECONDS = 0.005


# A worker is one core's worth of work by design: numpy's BLAS must not start threads of its
# own (OpenBLAS otherwise keeps a thread per core for products as small as the upsampler's,
# which then compete with the other workers for the same cores).
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def worker_environment() -> dict[str, str]:
    return {**os.environ, **SINGLE_THREADED}


class WorkerUnavailable(Exception):
    """No media worker could take the call; the message says why."""


class WorkerProcess:
    """The daemon's side of one worker: the process, its channel and its calls."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.pid = 0
        self.process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.calls: dict[str, MediaHandle] = {}
        self.opening: dict[str, asyncio.Future[p.EndpointOpened]] = {}
        self.ready = asyncio.get_running_loop().create_future()
        self.stats: p.WorkerStats | None = None
        self.alive = False
        self.measured = WorkerLoad(index)  # CPU load and loop lag from the worker's reports
        self._feed: list[bytes] = []  # ingest frames written together every FEED_FLUSH_SECONDS
        self._feed_bytes = 0
        self._feed_flush: asyncio.TimerHandle | None = None
        self.feed_dropped = 0
        self._sockets: socket.socket | None = None  # the descriptor channel (p.send_socket)
        self._tokens = 0

    @property
    def load(self) -> int:
        return len(self.calls) + len(self.opening)

    def send(self, message: p._Message) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._flush_feed()  # frames queued before this message go first
            self._writer.write(p.encode(message))

    def send_feed(self, frame: p.FeedAudio) -> bool:
        """Queue an ingest frame; False (dropped) when the channel is closed or its backlog is full.

        The frames of FEED_FLUSH_SECONDS, of every call of this worker, go out in one write.
        """
        writer = self._writer
        if writer is None or writer.is_closing():
            self.feed_dropped += 1
            return False
        if self._feed_bytes + writer.transport.get_write_buffer_size() > FEED_BACKLOG_BYTES:
            self.feed_dropped += 1
            return False
        encoded = frame.encode()
        self._feed.append(encoded)
        self._feed_bytes += len(encoded)
        if self._feed_flush is None:
            self._feed_flush = asyncio.get_running_loop().call_later(FEED_FLUSH_SECONDS, self._flush_feed)
        return True

    def adopt_stream(self, call_id: str, fd: int, handover: Handover) -> bool:
        """Hand the worker an ingest call's WebSocket (a duplicate of ``fd``); False if it cannot take it now."""
        writer = self._writer
        if self._sockets is None or writer is None or writer.is_closing() or not self.alive:
            return False
        self._tokens += 1
        try:
            p.send_socket(self._sockets, self._tokens, fd)
        except OSError as exc:
            log.warning("worker %d: could not pass call %s's stream: %s", self.index, call_id, exc)
            return False
        self.send(
            p.AdoptStream(
                call=call_id,
                token=self._tokens,
                protocol=handover.protocol,
                core=handover.core,
                tracks=list(handover.tracks),
                unparsed=handover.unparsed,
            )
        )
        return True

    def _flush_feed(self) -> None:
        if self._feed_flush is not None:
            self._feed_flush.cancel()
            self._feed_flush = None
        if self._feed and self._writer is not None and not self._writer.is_closing():
            self._writer.write(b"".join(self._feed))
        self._feed.clear()
        self._feed_bytes = 0

    async def run(self, config: BridgeConfig) -> int:
        """Start the process, serve its messages until it exits; returns its exit status."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sockets, their_sockets = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sockets.setblocking(False)
        with ours, sockets:
            with theirs, their_sockets:
                self.process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bridge.media.worker_process",
                    str(theirs.fileno()),
                    str(their_sockets.fileno()),
                    pass_fds=(theirs.fileno(), their_sockets.fileno()),
                    stdin=asyncio.subprocess.DEVNULL,
                    env=worker_environment(),
                )
            self._sockets = sockets
            reader, self._writer = await asyncio.open_connection(sock=ours)
            self.send(p.Configure(worker=self.index, config=config.model_dump(mode="json")))
            try:
                await self._serve(reader)
            finally:
                self.alive = False
                self._sockets = None
                if self._feed_flush is not None:
                    self._feed_flush.cancel()
                    self._feed_flush = None
                self._writer.close()
        return await self.process.wait()

    async def _serve(self, reader: asyncio.StreamReader) -> None:
        while (frame := await p.read_frame(reader)) is not None:
            try:
                message = p.decode_from_worker(frame)
            except p.ProtocolError as exc:
                log.error("worker %d: %s; stopping it", self.index, exc)
                self.kill()
                return
            self._dispatch(message)

    def _dispatch(self, message: p.FromWorker) -> None:
        if isinstance(message, p.WorkerReady):
            self.pid, self.alive = message.pid, True
            if not self.ready.done():
                self.ready.set_result(None)
        elif isinstance(message, p.EndpointOpened):
            future = self.opening.pop(message.call, None)
            if future is not None and not future.done():
                future.set_result(message)
        elif isinstance(message, p.WorkerStats):
            self.stats = message
            at = asyncio.get_running_loop().time()
            self.measured.report(message.cpu_seconds, at, len(message.calls), message.loop_lag_ms.get("recent", 0.0))
            for call_id, counters in message.calls.items():
                handle = self.calls.get(call_id)
                if handle is not None:
                    handle.counters_received(counters)
        else:
            handle = self.calls.get(message.call)
            if handle is not None:
                handle.received(message)

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    def lost(self, reason: str) -> None:
        """Tell every call of this worker that its media is gone."""
        self.alive = False
        for future in self.opening.values():
            if not future.done():
                future.set_exception(WorkerUnavailable(f"media worker {self.index} failed ({reason})"))
        self.opening.clear()
        for handle in list(self.calls.values()):
            handle.lost(reason)

    async def close(self, timeout: float) -> None:
        """Close the channel (the worker stops its calls and exits); kill it if it lingers."""
        if self._writer is not None:
            self._writer.close()
        if self.process is None:
            return
        try:
            async with asyncio.timeout(timeout):
                await self.process.wait()
        except TimeoutError:
            log.warning("worker %d did not exit within %g s; killing it", self.index, timeout)
            self.kill()
            await self.process.wait()


def describe_exit(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exited with status {status}"


class MediaWorkerPool:
    """N supervised worker processes and the assignment of calls to them."""

    def __init__(self, config: BridgeConfig, ports: PortAllocator, count: int) -> None:
        self.config = config
        self.admission = Admission(config.limits.max_worker_cpu, config.limits.max_worker_lag_ms)
        self.ports = ports
        self.count = count
        self.workers: list[WorkerProcess] = []
        self.restarts = 0
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, group: asyncio.TaskGroup) -> None:
        """Start every worker (supervised in ``group``) and wait until each is ready."""
        self.workers = [WorkerProcess(index) for index in range(self.count)]
        self._tasks = [group.create_task(self._supervise(index)) for index in range(self.count)]
        async with asyncio.timeout(START_TIMEOUT):
            await asyncio.gather(*(worker.ready for worker in self.workers))
        log.info("%d media worker(s) ready: pids %s", self.count, ", ".join(str(w.pid) for w in self.workers))

    async def _supervise(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        delay = RESTART_DELAY
        while not self._closing:
            worker = self.workers[index]
            started = loop.time()
            status = await worker.run(self.config)
            if self._closing:
                return
            reason = describe_exit(status)
            log.error("media worker %d (pid %d) %s; %d call(s) affected", index, worker.pid, reason, len(worker.calls))
            worker.lost(reason)
            delay = RESTART_DELAY if loop.time() - started > STABLE_SECONDS else min(delay * 2, MAX_RESTART_DELAY)
            self.restarts += 1
            self.workers[index] = WorkerProcess(index)
            await asyncio.sleep(delay)

    @property
    def alive(self) -> int:
        return sum(1 for worker in self.workers if worker.alive)

    async def open(self, call_id: str, host: str, exclude: int | None = None, video: bool = False) -> MediaHandle:
        """Bind an RTP/RTCP pair for a call in the least-loaded live worker (not ``exclude``).

        A few free ports are reserved and offered at a time; the ones another process
        holds are skipped, and the next few are offered, until the range is exhausted.
        """
        choice = self.admission.choose(self._loads(exclude))
        if isinstance(choice, str):
            raise WorkerUnavailable(f"{choice}; retry in a few seconds")
        worker = self.workers[choice]
        tried: set[int] = set()
        wanted = CANDIDATES_PER_OPEN + (1 if video else 0)
        while len(candidates := [port for port in self.ports.candidates() if port not in tried][:wanted]) == wanted:
            tried.update(candidates)
            opened = await self._offer(
                worker, call_id, host, candidates[:CANDIDATES_PER_OPEN], candidates[wanted - 1 :] if video else []
            )
            if opened.port and (opened.video_port or not video):
                return self._attach(worker, call_id, opened.port, opened.video_port)
        raise PortsExhausted(f"no free RTP port pair in {self.ports.first}-{self.ports.last}")

    async def _offer(
        self, worker: WorkerProcess, call_id: str, host: str, candidates: list[int], video: list[int]
    ) -> p.EndpointOpened:
        """Reserve the candidates while the worker tries to bind them; what it bound (port 0: none)."""
        future: asyncio.Future[p.EndpointOpened] = asyncio.get_running_loop().create_future()
        worker.opening[call_id] = future
        for port in candidates + video:
            self.ports.take(port)
        worker.send(p.OpenEndpoint(call=call_id, host=host, ports=candidates, video_ports=video))
        try:
            opened = await future
        finally:
            worker.opening.pop(call_id, None)
            for port in candidates + video:
                self.ports.release(port)
        if not opened.port:
            log.warning("worker %d: %s", worker.index, opened.error)
        return opened

    def open_feed(self, call_id: str) -> MediaHandle:
        """An ingest call in the least-loaded live worker: no socket to bind, its audio comes
        by :meth:`MediaHandle.feed`."""
        choice = self.admission.choose(self._loads())
        if isinstance(choice, str):
            raise WorkerUnavailable(f"{choice}; retry in a few seconds")
        worker = self.workers[choice]
        handle = MediaHandle(call_id, worker, 0, lambda: _forget(worker, call_id, handle))
        worker.calls[call_id] = handle
        return handle

    def _loads(self, exclude: int | None = None) -> list[WorkerLoad]:
        loads = []
        for worker in self.workers:
            load = worker.measured
            load.calls, load.alive = worker.load, worker.alive and worker.index != exclude
            loads.append(load)
        return loads

    def refusal(self) -> str | None:
        """Why no worker could take one more call now (admission by measured headroom), or None."""
        choice = self.admission.choose(self._loads())
        return choice if isinstance(choice, str) else None

    def _attach(self, worker: WorkerProcess, call_id: str, port: int, video_port: int = 0) -> MediaHandle:
        self.ports.take(port)
        if video_port:
            self.ports.take(video_port)

        def release() -> None:
            self.ports.release(port)
            if video_port:
                self.ports.release(video_port)
            if worker.calls.get(call_id) is handle:
                del worker.calls[call_id]

        handle = MediaHandle(call_id, worker, port, release)
        handle.video_port = video_port
        worker.calls[call_id] = handle
        return handle

    def reconfigure(self, config: BridgeConfig) -> None:
        """A reloaded configuration applies to the workers' new calls."""
        self.config = config
        self.admission = Admission(config.limits.max_worker_cpu, config.limits.max_worker_lag_ms)
        for worker in self.workers:
            worker.send(p.Configure(worker=worker.index, config=config.model_dump(mode="json")))

    async def close(self, timeout: float = 10.0) -> None:
        self._closing = True
        await asyncio.gather(*(worker.close(timeout) for worker in self.workers))
        for task in self._tasks:
            task.cancel()

    def stats(self) -> list[dict[str, Any]]:
        """Per worker: pid, alive, calls, loop lag, CPU seconds and RSS (from its last report)."""
        rows = []
        for worker in self.workers:
            stats = worker.stats
            rows.append(
                {
                    "worker": worker.index,
                    "pid": worker.pid,
                    "alive": worker.alive,
                    "calls": len(worker.calls),
                    "loopLagMs": stats.loop_lag_ms if stats else {},
                    "cpuSeconds": round(stats.cpu_seconds, 3) if stats else 0.0,
                    "rssBytes": stats.rss_bytes if stats else 0,
                    "tasks": stats.tasks if stats else 0,
                    "gcMs": stats.gc_ms if stats else 0.0,
                    "feedDropped": worker.feed_dropped,
                    "streams": stats.streams if stats else 0,
                    "fastPath": stats.fast_path if stats else False,
                    "stages": stats.stages if stats else {},
                }
            )
        return rows


def _forget(worker: WorkerProcess, call_id: str, handle: MediaHandle) -> None:
    if worker.calls.get(call_id) is handle:
        del worker.calls[call_id]
