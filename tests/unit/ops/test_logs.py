"""Log output: JSON lines with callId, and secrets of active calls masked in every record."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from bridge.ops.logs import REDACTOR, JsonFormatter, SecretRedactor, TextFormatter, configure_logging


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_call_id_and_mask_secrets(
    restore_root_logger: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", "json")
    REDACTOR.register("pw-in-a-log-line", "rtmp-token=abc123")
    try:
        log = logging.getLogger("bridge.session")
        log.info("call %s: %s (%s)", "c-9", "ESTABLISHED", "answered", extra={"call_id": "c-9"})
        log.warning("connect rtmp://cdn/live?%s as %s failed", "rtmp-token=abc123", "pw-in-a-log-line")
        logging.getLogger("bridge.other").debug("not at info level")
    finally:
        REDACTOR.unregister("pw-in-a-log-line", "rtmp-token=abc123")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["level"], e["logger"]) for e in lines] == [("info", "bridge.session"), ("warning", "bridge.session")]
    assert lines[0]["message"] == "call c-9: ESTABLISHED (answered)" and lines[0]["callId"] == "c-9"
    assert lines[1]["message"] == "connect rtmp://cdn/live?••••c123 as ••••line failed" and "callId" not in lines[1]
    assert lines[0]["time"].endswith("+00:00")


def test_secrets_are_reference_counted_per_call() -> None:
    redactor = SecretRedactor()
    redactor.register("shared-password", "abc")
    redactor.register("shared-password")
    redactor.unregister("shared-password")
    assert redactor.redact("shared-password abc") == "•••• ••••"  # a second call still holds it
    redactor.unregister("shared-password", "abc")
    assert redactor.redact("shared-password abc") == "shared-password abc"


def test_every_secret_is_masked_whatever_its_length() -> None:
    redactor = SecretRedactor()
    redactor.register("x", "7", "pin42", "abcd-efgh-ijkl-mnop-qrst")
    # Short secrets as tokens of their own, wherever they stand; never inside a longer word.
    assert redactor.redact("password=x user=bob") == "password=•••• user=bob"
    assert redactor.redact("rtmp://h/live/pin42?x") == "rtmp://h/live/••••?••••"
    assert redactor.redact("next 0x7f max 77 pin421") == "next 0x7f max 77 pin421"
    assert redactor.redact("digit 7.") == "digit ••••."
    # A long secret anywhere, shown with its tail as the API shows it.
    assert redactor.redact("key=abcd-efgh-ijkl-mnop-qrstuv") == "key=••••qrstuv"


def test_text_format_is_the_default(restore_root_logger: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning", "text")
    logging.getLogger("bridge.daemon").warning("plain %s", "line")
    assert capsys.readouterr().err.rstrip().endswith("WARNING bridge.daemon: plain line")
    assert isinstance(logging.getLogger().handlers[0].formatter, TextFormatter)
    assert not isinstance(logging.getLogger().handlers[0].formatter, JsonFormatter)


def test_tracebacks_are_masked_in_text_lines(restore_root_logger: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "text")
    REDACTOR.register("pw-in-a-traceback")
    try:
        try:
            raise ValueError("bad login pw-in-a-traceback")
        except ValueError:
            logging.getLogger("bridge.session").exception("call %s: internal error", "c-1")
    finally:
        REDACTOR.unregister("pw-in-a-traceback")
    err = capsys.readouterr().err
    assert "ValueError: bad login ••••back" in err and "pw-in-a-traceback" not in err


def test_many_calls_secrets_come_and_go_without_masking_the_wrong_ones() -> None:
    redactor = SecretRedactor()
    keys = [f"stream-key-{n:04d}-abcdefgh" for n in range(500)]
    redactor.register(*keys)
    redactor.unregister(*keys[:250])
    line = f"published {keys[100]} and {keys[400]}"
    assert redactor.redact(line) == f"published {keys[100]} and ••••efgh"
    redactor.register("stream-key-0400")  # a prefix of a registered key: the longer one wins
    assert redactor.redact(keys[400]) == "••••efgh" and redactor.redact("stream-key-0400!") == "••••!"


def test_a_calls_secret_does_not_mask_another_calls_records(
    restore_root_logger: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A password chosen equal to another call's id blanks only its own call's lines (review finding 7)."""
    configure_logging("info", "text")
    REDACTOR.register("victim-call-0001", owner="attacker-call")
    try:
        log = logging.getLogger("bridge.session")
        log.info("call %s: %s", "victim-call-0001", "FINISH", extra={"call_id": "victim-call-0001"})
        log.info("call %s: password %s", "attacker-call", "victim-call-0001", extra={"call_id": "attacker-call"})
        log.info("no call's line: %s", "victim-call-0001")
    finally:
        REDACTOR.unregister("victim-call-0001", owner="attacker-call")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("call victim-call-0001: FINISH")  # the victim's own line, intact
    assert "victim-call-0001" not in lines[1] and "••••0001" in lines[1]  # the owner's line: masked
    assert "victim-call-0001" not in lines[2]  # a line of no call: every secret masks it


def test_a_secret_two_calls_share_masks_both_until_both_end() -> None:
    index = SecretRedactor()
    index.register("shared-password-1", owner="a")
    index.register("shared-password-1", owner="b")
    index.unregister("shared-password-1", owner="a")
    assert "shared-password-1" not in index.redact("b: shared-password-1", "b")
    assert index.redact("a: shared-password-1", "a") == "a: shared-password-1"  # a ended: not a's any more
    index.unregister("shared-password-1", owner="b")
    assert not index


def test_text_lines_escape_control_characters(restore_root_logger: None, capsys: pytest.CaptureFixture[str]) -> None:
    """Remote text with CR/LF cannot forge a log line (review finding 6)."""
    configure_logging("info", "text")
    logging.getLogger("bridge.sip").info("reason %s", "busy\r\n2026-12-07 00:00:00,000 ERROR forged: line\x1b[2J")
    out = capsys.readouterr().err
    assert len(out.splitlines()) == 1
    assert "busy\\r\\n2026-12-07 00:00:00,000 ERROR forged: line\\x1b[2J" in out
