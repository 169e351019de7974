"""One call's recordings in its media worker: the played-out audio and the published AAC, to files.

What is recorded is what the call's listeners hear, on the same wall-clock timeline as the
stream: ``wav`` — PCM16 at the call's decoded rate (stereo when the call is laid out in stereo),
``wav-ulaw`` — the same audio as G.711 µ-law (byte for byte what a PCMU far end sent, where
nothing was concealed), ``m4a`` — the AAC frames the destinations get, in fragmented MP4
(no second encode). An ingest call with tracks also gets one ``wav``/``wav-ulaw`` file per
track (Twilio inbound/outbound, RingCentral perspectives, ACS participants), aligned with the
mix: a track that starts late starts with silence.

Every ``flush_seconds`` each file's new samples go to the worker's :class:`FileWriter` with the
header bytes that make the file valid up to them, so a crash of the worker or of the daemon
leaves a file that plays up to its last flush. A file that cannot be written (disk full) or
whose writes fall more than ``MAX_PENDING_SECONDS`` behind stops with a ``recording`` event
naming the reason; the call and its stream go on.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bridge.channel.protocol import RecordingChanged, RecordStart, Reporter
from bridge.media.file_writer import Closed, Failed, FileWriter, Opened, Patch, WriterEvent
from bridge.recording import fmp4, wav
from bridge.recording.config import EXTENSIONS
from rtp.g711 import encode_ulaw

log = logging.getLogger("bridge.recording")
Samples = npt.NDArray[np.int16]
MAX_PENDING_SECONDS = 10.0
CLOSE_TIMEOUT = 10.0
FILE_IDS: Iterator[int] = itertools.count(1)


class RecordingFile:
    """One file: what waits to be written, what was handed to the writer, and its state."""

    def __init__(self, file_id: int, kind: str, track: str, path: Path, rate: int, channels: int) -> None:
        self.file_id, self.kind, self.track, self.path = file_id, kind, track, path
        self.rate, self.channels = rate, channels
        self.state, self.reason = "recording", ""
        self.pending = bytearray()  # wav: samples; m4a: whole fragments' frames kept in ``frames``
        self.frames: list[bytes] = []
        self.handed = 0  # data bytes (wav) or frames (m4a) handed to the writer
        self.sequence = 0
        self.size = 0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        tag = wav.MULAW if kind == "wav-ulaw" else wav.PCM
        self.wav = wav.WavFormat(tag, rate, channels) if kind != "m4a" else None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def duration_seconds(self) -> float:
        if self.wav is not None:
            return wav.duration_seconds(self.wav, self.handed)
        return self.handed * fmp4.AAC_FRAME_SAMPLES / self.rate

    @property
    def waiting_seconds(self) -> float:
        if self.wav is not None:
            return len(self.pending) / self.wav.byte_rate
        return len(self.frames) * fmp4.AAC_FRAME_SAMPLES / self.rate

    def add_samples(self, block: Samples) -> None:
        if self.state == "recording":
            self.pending += encode_ulaw(block.reshape(-1)) if self.kind == "wav-ulaw" else block.astype("<i2").tobytes()

    def take_chunk(self) -> tuple[bytes, Patch]:
        """What to append now and the header patch that makes the file valid with it."""
        if self.wav is not None:
            chunk = bytes(self.pending)
            total = self.handed + len(chunk)
            return chunk, (0, wav.header(self.wav, total))
        sequence, base = self.sequence + 1, self.handed * fmp4.AAC_FRAME_SAMPLES
        return fmp4.fragment(sequence, base, self.frames), None

    def chunk_taken(self) -> None:
        if self.wav is not None:
            self.handed += len(self.pending)
            self.pending.clear()
        else:
            self.sequence += 1
            self.handed += len(self.frames)
            self.frames.clear()


class CallRecorder:
    """The recordings of one call (see the module's docstring)."""

    def __init__(
        self,
        spec: RecordStart,
        rate: int,
        channels: int,
        asc: bytes | None,
        writer: FileWriter,
        report: Reporter,
        now: float,
        aac_rate: int = 0,
    ) -> None:
        """``rate``: the played-out audio's (the WAV files'); ``aac_rate``: the published AAC's (the m4a's)."""
        self.spec, self.rate, self.channels, self.asc = spec, rate, channels, asc
        self.aac_rate = aac_rate or rate
        self._writer, self._tell = writer, report
        self.files: dict[int, RecordingFile] = {}
        self.track_names: dict[int, str] = dict(enumerate(spec.track_names))
        self._track_files: dict[int, list[RecordingFile]] = {}
        self.samples = 0  # of the mix, recorded so far
        self._next_flush = now + spec.flush_seconds
        for kind in spec.formats:
            if kind == "m4a" and asc is None:
                failed = RecordingChanged(format=kind, track="mix", state="failed", reason="the call publishes no AAC")
                self._tell(failed)
                continue
            self._open(kind, "mix", channels)

    def _open(self, kind: str, track: str, channels: int) -> RecordingFile:
        relative = self.spec.path.replace("{track}", track).replace("{ext}", EXTENSIONS[kind])
        rate = self.aac_rate if kind == "m4a" else self.rate
        file = RecordingFile(next(FILE_IDS), kind, track, Path(self.spec.directory) / relative, rate, channels)
        self.files[file.file_id] = file
        if file.wav is not None:
            head = wav.header(file.wav, 0)
        else:
            assert self.asc is not None
            head = fmp4.init_segment(self.asc, self.aac_rate, channels)
        self._writer.open(file.file_id, file.path, head, self.writer_event)
        return file

    def name_track(self, index: int, name: str) -> None:
        self.track_names.setdefault(index, name)

    # -- media, at the worker's tick ----------------------------------------------------

    def audio(self, mix: Samples, tracks: dict[int, Samples] | None = None) -> None:
        """The audio played out this tick: the mix, and each track's own when the call has tracks."""
        for file in self.files.values():
            if file.track == "mix" and file.wav is not None:
                file.add_samples(mix)
        if tracks:
            for index, block in tracks.items():
                for file in self._track_files.get(index) or self._open_track(index):
                    file.add_samples(block)
        self.samples += len(mix)

    def _open_track(self, index: int) -> list[RecordingFile]:
        name = self.track_names.get(index, f"track{index + 1}")
        opened = [self._open(kind, name, 1) for kind in self.spec.formats if kind != "m4a"]
        for file in opened:
            file.add_samples(np.zeros(self.samples, np.int16))  # aligned with the mix
        self._track_files[index] = opened
        return opened

    def aac(self, bodies: list[tuple[int, bytes]]) -> None:
        """The published AAC frames (FLV audio bodies: two header bytes, then the raw frame)."""
        if not bodies:
            return
        for file in self.files.values():
            if file.kind == "m4a" and file.state == "recording":
                file.frames += [body[2:] for _timestamp, body in bodies]

    def flush(self, now: float) -> None:
        """Hand each file's new data to the writer, every ``flush_seconds``."""
        if now < self._next_flush:
            return
        self._next_flush = now + self.spec.flush_seconds
        for file in self.files.values():
            self._flush_file(file)

    def _flush_file(self, file: RecordingFile, force: bool = False) -> None:
        if file.state != "recording" or not (file.pending or file.frames):
            return
        chunk, patch = file.take_chunk()
        if self._writer.append(file.file_id, chunk, patch, force):
            file.chunk_taken()
        elif file.waiting_seconds > MAX_PENDING_SECONDS:
            self._stop(file, f"the disk did not keep up ({MAX_PENDING_SECONDS:g} s of audio waiting)")

    # -- the writer's answers -------------------------------------------------------------

    def writer_event(self, event: WriterEvent) -> None:
        file = self.files.get(event.file_id)
        if file is None:
            return
        if isinstance(event, Opened):
            file.path = event.path
            self._report(file)
        elif isinstance(event, Failed):
            self._stop(file, event.reason)
        elif isinstance(event, Closed):
            file.size = max(event.size, 0)
            if file.state == "recording":
                file.state = "complete"
            self._report(file)
            if not file.closed.done():
                file.closed.set_result(None)

    def _stop(self, file: RecordingFile, reason: str) -> None:
        if file.state != "recording":
            return
        file.state, file.reason = "stopped", reason
        file.pending.clear()
        file.frames.clear()
        log.warning("recording %s stopped: %s", file.name, reason)
        self._report(file)

    def _report(self, file: RecordingFile) -> None:
        self._tell(
            RecordingChanged(
                name=file.name,
                format=file.kind,
                track=file.track,
                state=file.state,
                reason=file.reason,
                path=str(file.path.relative_to(self.spec.directory)),
                bytes=file.size,
                duration_seconds=round(file.duration_seconds, 3),
            )
        )

    async def close(self) -> None:
        """Write what is left, finalise every file's header and close it (bounded wait)."""
        for file in self.files.values():
            self._flush_file(file, force=True)
            self._writer.close(file.file_id, None)
        waiting = [file.closed for file in self.files.values()]
        if waiting:
            _done, pending = await asyncio.wait(waiting, timeout=CLOSE_TIMEOUT)
            if pending:
                log.warning("%d recording file(s) not confirmed closed within %g s", len(pending), CLOSE_TIMEOUT)
