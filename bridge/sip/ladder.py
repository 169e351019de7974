"""A per-call record of SIP messages (the "ladder"), for troubleshooting. No credentials."""

from __future__ import annotations

from dataclasses import dataclass

from sipmessage import Request, Response

MAX_ENTRIES = 200


@dataclass(slots=True)
class LadderEntry:
    at: float  # monotonic seconds
    direction: str  # "out" or "in"
    message: str  # "INVITE sip:uas@host" or "407 Proxy Authentication Required"
    cseq: str

    def to_json(self, wall_offset: float) -> dict[str, str | float]:
        return {
            "at": round(self.at + wall_offset, 3),
            "direction": self.direction,
            "message": self.message,
            "cseq": self.cseq,
        }


class Ladder:
    """Keeps the first and last messages of a call (bounded)."""

    def __init__(self) -> None:
        self.entries: list[LadderEntry] = []
        self.omitted = 0

    def record(self, direction: str, message: Request | Response, now: float) -> None:
        if isinstance(message, Request):
            label = f"{message.method} {message.uri}"
        else:
            label = f"{message.code} {message.phrase}"
        entry = LadderEntry(now, direction, label, str(message.cseq))
        if len(self.entries) >= MAX_ENTRIES:
            del self.entries[MAX_ENTRIES // 2]  # keep the set-up and the most recent messages
            self.omitted += 1
        self.entries.append(entry)
