"""What the ingest endpoints refused and how their connections closed (read by /metrics).

Labels are the operator's route name, the protocol and an HTTP status or WebSocket close
code: nothing a sender chooses (an unknown route is counted under ``UNKNOWN_ROUTE``), so a
scanner cannot grow the label set, and no token or platform id ever becomes a label.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

UNKNOWN_ROUTE = "(unknown)"


@dataclass(slots=True)
class IngestStats:
    # (route, protocol, HTTP status) of upgrades refused before any call existed
    refused: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    # (route, protocol, close code) of every upgraded connection once it has closed
    closed: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    # (route, protocol) of messages dropped before the call's media ran (beyond what is held meanwhile)
    dropped_before_media: Counter[tuple[str, str]] = field(default_factory=Counter)
