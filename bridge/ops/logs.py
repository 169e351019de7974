"""Logging set-up: human-readable lines by default, JSON lines with ``--log-format json``.

Every record passes the :data:`REDACTOR` first, which replaces the secrets of active
calls (SIP passwords, RTMP stream keys, userinfo and query strings) with their masked
form (``••••`` + tail, :func:`bridge.ops.masking.mask`) — a defence in depth behind the rule
that secrets are never put into log messages in the first place. Every secret is masked
whatever its length: one shorter than 8 characters only where it stands as a token of
its own (not inside a longer word), so a 1-character password does not eat every "x".
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from bridge.ops.redaction import SecretIndex

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SecretRedactor(SecretIndex, logging.Filter):
    """Masks registered secrets in every record; secrets are reference-counted per call
    (:class:`bridge.ops.redaction.SecretIndex`: registering is cheap, a line costs one scan)."""

    def __init__(self) -> None:
        SecretIndex.__init__(self)
        logging.Filter.__init__(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if self:
            record.msg = self.redact(record.getMessage(), getattr(record, "call_id", None))
            record.args = None
        return True


REDACTOR = SecretRedactor()


_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)} | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\t"}


def escape_controls(text: str) -> str:
    """``text`` on one line: CR, LF and other control characters as escapes (tabs stay).

    Messages carry text from the network (SIP headers, reasons, URLs); escaped, a newline in
    them cannot start a forged log line.
    """
    return text.translate(_CONTROLS)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message`` on one line; a traceback is masked like the message."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return REDACTOR.redact(super().formatException(ei))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, callId when known."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        call_id = getattr(record, "call_id", None)
        if call_id is not None:
            entry["callId"] = call_id
        if record.exc_info:
            entry["exception"] = REDACTOR.redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Log to stderr (journald picks it up under systemd) in the chosen format."""
    handler = logging.StreamHandler()
    handler.addFilter(REDACTOR)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
