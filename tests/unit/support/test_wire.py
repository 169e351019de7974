"""The test peers' own wire code (tests/support/wire.py) checked against other implementations and
the RFCs' examples, so that the peers that judge the bridge can be trusted themselves."""

from __future__ import annotations

import warnings

import numpy as np

from tests.support.wire import Rfc4733Digits, read_rtp, rtp, ulaw_encode


def test_ulaw_matches_the_standard_librarys_audioop_for_every_16_bit_value() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    every = np.arange(-32768, 32768).astype(np.int16)
    assert ulaw_encode(every) == audioop.lin2ulaw(every.tobytes(), 2)


def test_rtp_header_bytes_follow_rfc3550() -> None:
    # V=2, no padding/extension/CSRC; marker set, PT 101; seq 0x1234; ts 0x00000A00; SSRC 0xDEADBEEF
    packet = rtp(101, 0x1234, 0xA00, 0xDEADBEEF, b"\x01\x02", marker=True)
    assert packet == bytes.fromhex("80e5123400000a00deadbeef0102")
    parsed = read_rtp(packet)
    assert parsed is not None and (parsed.payload_type, parsed.marker, parsed.sequence) == (101, True, 0x1234)
    with_csrc_and_padding = bytes.fromhex("a1001234000000010000000211111111") + b"ab" + b"\x00\x02"
    parsed = read_rtp(with_csrc_and_padding)
    assert parsed is not None and parsed.payload == b"ab"


def test_rfc4733_digit_once_per_event_at_its_end() -> None:
    """RFC 4733 §2.5.1.4's pattern: updates without E, then the end packet three times."""
    digits = Rfc4733Digits()
    for duration, end in [(400, False), (800, False), (1280, True), (1280, True), (1280, True)]:
        digits.packet(7, 16000, bytes([11, (0x80 if end else 0) | 10]) + duration.to_bytes(2, "big"))
    digits.packet(7, 17280, bytes([10, 0x8A]) + (1280).to_bytes(2, "big"))
    assert digits.digits == ["#", "*"] and digits.durations == [1280, 1280]
