"""The recordings' file I/O, on one thread per media worker fed by a bounded queue.

The worker's event loop never touches the disk: it hands over whole chunks (a flush's worth
of samples, or one MP4 fragment) with the header bytes that make the file valid up to that
chunk, and this thread writes them. A full queue refuses more (the recorder keeps its data
for a while, then stops that recording), so a slow disk costs memory up to a bound, never
time on the media path. Failures (a full disk, a read-only directory) come back as events
and stop that file only; the call and its stream go on.

Files are private: directories are created 0700 and files 0600, whatever the umask.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bridge.recording.directories import make_private_directory

log = logging.getLogger("bridge.recording")
MAX_QUEUED_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Opened:
    file_id: int
    path: Path  # the name finally used (a suffix is added when the pattern's name exists)


@dataclass(frozen=True, slots=True)
class Failed:
    file_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Closed:
    file_id: int
    size: int


WriterEvent = Opened | Failed | Closed
Patch = tuple[int, bytes] | None  # bytes to write at an offset after the chunk (a WAV header's sizes)


def describe(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full ({exc.strerror})"
    return f"{exc.strerror or type(exc).__name__} (errno {exc.errno})"


def open_private(path: Path) -> tuple[int, Path]:
    """A new file 0600 at ``path``, or ``name-2.ext``, ``name-3.ext`` ... if it exists."""
    make_private_directory(path.parent)
    stem, suffix = path.name.split(".", 1) if "." in path.name else (path.name, "")
    for attempt in range(1, 1000):
        name = path.name if attempt == 1 else f"{stem}-{attempt}{'.' + suffix if suffix else ''}"
        candidate = path.with_name(name)
        try:
            return os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), candidate
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "every name for this recording exists", str(path))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class FileWriter:
    """Every recording file of one media worker; :meth:`start` runs the thread."""

    def __init__(self, max_queued_bytes: int = MAX_QUEUED_BYTES) -> None:
        self._handlers: dict[int, Callable[[WriterEvent], None]] = {}  # on the loop's side
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._queued = 0
        self._lock = threading.Lock()
        self._max = max_queued_bytes
        self._files: dict[int, int] = {}  # file id -> descriptor (the thread's)
        self._dead: set[int] = set()
        self._thread = threading.Thread(target=self._work, name="recording-writer", daemon=True)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued (closing every file), then end the thread."""
        self._jobs.put(None)
        self._thread.join(timeout)

    @property
    def queued_bytes(self) -> int:
        return self._queued

    def open(self, file_id: int, path: Path, head: bytes, on_event: Callable[[WriterEvent], None]) -> None:
        """Create the file with its first bytes; its events go to ``on_event`` on the event loop."""
        self._handlers[file_id] = on_event
        self._jobs.put(lambda: self._open(file_id, path, head))

    def append(self, file_id: int, data: bytes, patch: Patch, force: bool = False) -> bool:
        """Queue a chunk; False (nothing queued) when the queue holds its bound already (unless ``force``:
        a file's last chunk, whose size its recorder already bounded)."""
        with self._lock:
            if not force and self._queued and self._queued + len(data) > self._max:
                return False
            self._queued += len(data)
        self._jobs.put(lambda: self._append(file_id, data, patch))
        return True

    def close(self, file_id: int, patch: Patch) -> None:
        self._jobs.put(lambda: self._close(file_id, patch))

    # -- the thread ---------------------------------------------------------------------

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()
        for file_id in list(self._files):
            self._close(file_id, None)

    def _emit(self, event: WriterEvent) -> None:
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._dispatch, event)

    def _dispatch(self, event: WriterEvent) -> None:
        """On the loop: the file's handler (forgotten once the file is closed)."""
        handler = self._handlers.pop(event.file_id, None) if isinstance(event, Closed) else None
        handler = handler or self._handlers.get(event.file_id)
        if handler is not None:
            handler(event)

    def _fail(self, file_id: int, exc: OSError) -> None:
        fd = self._files.pop(file_id, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._dead.add(file_id)
        self._emit(Failed(file_id, describe(exc)))

    def _open(self, file_id: int, path: Path, head: bytes) -> None:
        try:
            fd, used = open_private(path)
            self._files[file_id] = fd
            _write_all(fd, head)
        except OSError as exc:
            self._fail(file_id, exc)
            return
        self._emit(Opened(file_id, used))

    def _append(self, file_id: int, data: bytes, patch: Patch) -> None:
        try:
            fd = self._files.get(file_id)
            if fd is None:
                return  # failed or closed before: dropped
            _write_all(fd, data)
            if patch is not None:
                os.pwrite(fd, patch[1], patch[0])
        except OSError as exc:
            self._fail(file_id, exc)
        finally:
            with self._lock:
                self._queued -= len(data)

    def _close(self, file_id: int, patch: Patch) -> None:
        """Always answered with :class:`Closed` (size -1: the file had failed or never opened)."""
        fd = self._files.pop(file_id, None)
        self._dead.discard(file_id)
        size = -1
        if fd is not None:
            try:
                if patch is not None:
                    os.pwrite(fd, patch[1], patch[0])
                os.fdatasync(fd)
                size = os.fstat(fd).st_size
            except OSError as exc:
                self._emit(Failed(file_id, describe(exc)))
            finally:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._emit(Closed(file_id, size))
