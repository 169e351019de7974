"""When to reconnect, when a connection is stuck, and where video may resume (sans-IO).

The rules that keep one destination published for a whole call, apart from the sockets
(:mod:`bridge.media.stream` drives them with the loop's time):

- :class:`ReconnectPolicy`: capped exponential backoff between attempts, reset by a successful
  publish; give up once the stream has been failing for ``give_up_seconds`` (0: never).
- :class:`ProgressWatchdog`: restart a connection whose socket has taken nothing for
  ``stall_seconds`` while media waits, or whose server owes two acknowledgement windows
  (RTMP "Window Acknowledgement Size", section 5.4.4 of Adobe's RTMP specification) for as long:
  a server that stops reading keeps its kernel taking our bytes into megabytes of socket buffers.
- :class:`KeyframeGate`: after every (re)publish, video starts on a key frame.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PublishSettings:
    initial_backoff: float = 0.5
    max_backoff: float = 2.0
    give_up_seconds: float = 60.0  # 0: retry forever
    stall_seconds: float = 10.0
    ack_window_bytes: int = 8192  # 0: do not ask the server to acknowledge


class ReconnectPolicy:
    """The delay before the next attempt after a failure, or None: give the stream up."""

    def __init__(self, settings: PublishSettings) -> None:
        self._settings = settings
        self._backoff = settings.initial_backoff
        self._failing_since: float | None = None

    def failed(self, now: float, had_published: bool) -> float | None:
        """A connection or attempt failed at ``now`` (``had_published``: it was publishing)."""
        settings = self._settings
        if had_published:
            self._failing_since, self._backoff = now, settings.initial_backoff
        if self._failing_since is None:
            self._failing_since = now
        if settings.give_up_seconds and now - self._failing_since > settings.give_up_seconds:
            return None
        delay = self._backoff
        self._backoff = min(self._backoff * 2, settings.max_backoff)
        return delay


class ProgressWatchdog:
    """Judges one connection at a time; :meth:`connected` starts a new one."""

    def __init__(self, settings: PublishSettings) -> None:
        self._settings = settings
        self._last_write: float | None = None
        self._owed_since: float | None = None  # when the server came to owe us an acknowledgement
        self._server_acknowledges = False  # it acknowledged on some connection: judge new ones from the start

    def connected(self, now: float) -> None:
        self._last_write, self._owed_since = now, None

    def wrote(self, now: float) -> None:
        self._last_write = now

    def check(self, now: float, waiting: bool, unacknowledged: int | None, sent: int) -> str | None:
        """Why the connection must be restarted, or None. ``waiting``: media is queued for it;
        ``unacknowledged``: bytes past the server's last acknowledgement (None: it never sent one);
        ``sent``: bytes sent since the handshake."""
        stall = self._settings.stall_seconds
        if self._last_write is not None and waiting and now - self._last_write > stall:
            return f"no progress for {stall:g} s"
        if self._acks_overdue(now, unacknowledged, sent) > stall:
            self._owed_since = None
            return f"the server acknowledged nothing for {stall:g} s (it stopped reading)"
        return None

    def _acks_overdue(self, now: float, unacknowledged: int | None, sent: int) -> float:
        """Seconds since the server owes us an acknowledgement: two windows sent past its last one (or
        since the connection began, once this server has shown it acknowledges). A server that never
        acknowledged anything is judged by its socket alone."""
        window = self._settings.ack_window_bytes
        if unacknowledged is not None:
            self._server_acknowledges = True
        elif self._server_acknowledges:
            unacknowledged = sent
        if not window or unacknowledged is None or unacknowledged < 2 * window:
            self._owed_since = None
            return 0.0
        if self._owed_since is None:
            self._owed_since = now
        return now - self._owed_since


class KeyframeGate:
    """Inter frames before the first key frame after a publish are dropped (a player cannot decode them)."""

    def __init__(self) -> None:
        self._awaiting = True

    def published(self) -> None:
        self._awaiting = True

    def accept(self, keyframe: bool) -> bool:
        if self._awaiting and not keyframe:
            return False
        self._awaiting = False
        return True
