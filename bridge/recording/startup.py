"""Recordings at start-up: the private directory, the store, and the repair of what a crash left."""

from __future__ import annotations

import logging

from bridge.config import BridgeConfig
from bridge.history import HistoryStore
from bridge.ops.bus import EventBus
from bridge.ops.logs import REDACTOR
from bridge.recording.directories import make_private_directory
from bridge.recording.service import Recordings
from bridge.recording.store import RecordingStore
from bridge.recording.upload import Uploader

log = logging.getLogger("bridge.recording")


def open_recordings(config: BridgeConfig, history: HistoryStore, bus: EventBus) -> Recordings:
    """Blocking (run it in a thread): create the directory 0700, open the store, repair interrupted files."""
    recordings = Recordings(config.recording, RecordingStore(history), bus)
    upload = config.recording.upload
    REDACTOR.register(*upload.secrets())
    if upload.kind:
        recordings.uploader = Uploader(upload, recordings)
        logging.getLogger("azure").setLevel(logging.WARNING)  # its INFO lines list every request's headers
    try:
        make_private_directory(recordings.directory)
    except OSError as exc:
        log.error("recording.directory %s cannot be created: %s; recordings will fail", recordings.directory, exc)
    repaired = recordings.recover()
    if repaired:
        log.warning(
            "%d recording(s) were being written when the bridge stopped; repaired, marked interrupted", repaired
        )
    resumed = recordings.resume_uploads()
    if resumed:
        log.info("%d recording upload(s) left unfinished by the last run resumed", resumed)
    return recordings
