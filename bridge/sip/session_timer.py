"""Session timers, RFC 4028, sans-IO.

We ask for ``Session-Expires`` in our INVITE; the 2xx (or a refresh from the far
end) decides who refreshes. When we are the refresher we refresh at half the
interval (section 10); when the far end is, we give up (BYE) if no refresh has
arrived by ``interval - min(32, interval / 3)`` (section 10).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

_SESSION_EXPIRES = re.compile(r"^\s*(?P<seconds>\d+)\s*(?P<params>(?:;.*)?)$")
_REFRESHER = re.compile(r";\s*refresher\s*=\s*(?P<who>uac|uas)\b", re.I)

MIN_SE = 90


class Refresher(Enum):
    US = "us"
    THEM = "them"


@dataclass(frozen=True, slots=True)
class SessionExpires:
    seconds: int
    refresher: str | None  # "uac", "uas" or None when absent

    def header(self) -> str:
        return f"{self.seconds};refresher={self.refresher}" if self.refresher else str(self.seconds)


def parse_session_expires(value: str | None) -> SessionExpires | None:
    """Parse ``Session-Expires: 1800;refresher=uac`` (RFC 4028 section 4)."""
    if value is None:
        return None
    match = _SESSION_EXPIRES.match(value)
    if match is None:
        return None
    refresher = _REFRESHER.search(match["params"])
    return SessionExpires(int(match["seconds"]), refresher["who"].lower() if refresher else None)


class SessionTimer:
    """Deadlines for refreshing (if we refresh) or for giving up (if they do)."""

    def __init__(self, requested: int) -> None:
        self.requested = max(requested, MIN_SE)
        self.interval: int | None = None
        self.refresher: Refresher | None = None
        self.refresh_at: float | None = None
        self.expire_at: float | None = None

    @property
    def active(self) -> bool:
        return self.interval is not None

    def start(self, expires: SessionExpires | None, we_are_uac: bool, now: float) -> None:
        """Arm from a 2xx or a refresh. ``we_are_uac``: we sent the request that set it."""
        if expires is None:
            self.interval = self.refresher = self.refresh_at = self.expire_at = None
            return
        self.interval = expires.seconds
        mine = "uac" if we_are_uac else "uas"
        ours = expires.refresher == mine or (expires.refresher is None and we_are_uac)
        self.refresher = Refresher.US if ours else Refresher.THEM
        self.refresh_at = now + self.interval / 2 if ours else None
        self.expire_at = now + self.interval - min(32, self.interval / 3)

    def get_timer(self) -> float | None:
        present = [t for t in (self.refresh_at, self.expire_at) if t is not None]
        return min(present) if present else None

    def refresh_due(self, now: float) -> bool:
        if self.refresh_at is not None and now >= self.refresh_at:
            self.refresh_at = None
            return True
        return False

    def expired(self, now: float) -> bool:
        return self.expire_at is not None and now >= self.expire_at

    def request_headers(self) -> dict[str, str]:
        """Headers for our INVITE or refresh (section 7.1)."""
        seconds = self.interval or self.requested
        return {"Supported": "timer", "Session-Expires": f"{seconds};refresher=uac", "Min-SE": str(MIN_SE)}

    def answer_refresh(self, request_value: str | None, now: float) -> str | None:
        """A refresh from the far end (section 9): re-arm and return our Session-Expires, if any."""
        expires = parse_session_expires(request_value)
        if expires is None:
            self.start(None, we_are_uac=False, now=now)
            return None
        chosen = SessionExpires(expires.seconds, expires.refresher or "uac")
        self.start(chosen, we_are_uac=False, now=now)
        return chosen.header()
