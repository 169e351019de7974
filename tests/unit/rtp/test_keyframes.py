"""Keyframe requests: PLI and FIR bytes from the RFCs' layouts, the RFC 5168 XML, rate limiting."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rtp.keyframes import KeyframeCadence, KeyframeRequester, Method, fir, picture_fast_update, pli
from rtp.rtcp import parse_sender_report


def test_pli_bytes_follow_rfc_4585_section_6_1_and_6_3_1() -> None:
    # V=2 P=0 FMT=1 | PT=206 | length=2 | SSRC of sender | SSRC of media source
    assert pli(0x11223344, 0x55667788) == bytes.fromhex("81ce00021122334455667788")


def test_fir_bytes_follow_rfc_5104_section_4_3_1() -> None:
    # FMT=4, length=4, media source 0, FCI: SSRC, Seq nr, 24 reserved bits
    assert fir(0x11223344, 0x55667788, 7) == bytes.fromhex("84ce000411223344000000005566778807000000")


def test_rfc_5168_body_parses_to_picture_fast_update() -> None:
    root = ET.fromstring(picture_fast_update())
    assert root.tag == "media_control"
    assert root.find("./vc_primitive/to_encoder/picture_fast_update") is not None


def test_requests_are_rate_limited_and_fir_sequence_numbers_increase() -> None:
    requester = KeyframeRequester(1, fir_ok=True, pli_ok=True, min_interval=0.5)
    first = requester.request(9, 0.0)
    assert first is not None and first.method is Method.FIR and first.packet[16] == 1
    assert requester.request(9, 0.2) is None
    second = requester.request(9, 0.6)
    assert second is not None and second.packet[16] == 2 and requester.sent == 2
    assert KeyframeRequester(1, fir_ok=False, pli_ok=True).method is Method.PLI
    info = KeyframeRequester(1, fir_ok=False, pli_ok=False).request(9, 0.0)
    assert info is not None and info.method is Method.INFO and b"picture_fast_update" in info.packet


def test_sender_report_fields_per_rfc_3550_section_6_4_1() -> None:
    # V=2 RC=0 PT=200 length=6 | SSRC | NTP 0x83AA7E80.80000000 (2 ** 31 / 2 ** 32 = 0.5 s) | RTP 160000 | counts
    data = bytes.fromhex("80c800061122334483aa7e8080000000000271000000006400003e80")
    report = parse_sender_report(data)
    assert report is not None and report.rtp_timestamp == 160_000
    assert report.ntp_seconds == 0x83AA7E80 + 0.5 and report.middle == 0x7E808000  # LSR: middle 32 bits
    assert parse_sender_report(data[:1] + bytes([201]) + data[2:]) is None  # a receiver report


def test_cadence_asks_ahead_of_the_interval_so_key_frames_stay_within_it() -> None:
    cadence = KeyframeCadence(2.0, lead=0.3)
    assert not cadence.due(5.0)  # no key frame yet: the start asks for its own
    cadence.keyframe(0.0)
    assert not cadence.due(1.69) and cadence.due(1.7)
    cadence.asked(1.7)
    assert not cadence.due(1.8)  # waiting for the answer
    cadence.keyframe(1.78)  # answered one frame later: 1.78 s after the last
    assert cadence.answered == 1 and not cadence.due(3.0) and cadence.due(3.48)


def test_cadence_repeats_unanswered_requests_and_reports_a_far_end_that_ignores_them() -> None:
    cadence = KeyframeCadence(2.0, lead=0.3, retry=1.0)
    cadence.keyframe(0.0)
    asked = [now / 10 for now in range(17, 60) if cadence.due(now / 10) and (cadence.asked(now / 10) or True)]
    assert asked == [1.7, 2.7, 3.7, 4.7, 5.7]  # one per retry second, not one per tick
    assert cadence.unanswered == 4 and cadence.ignoring
    cadence.keyframe(6.0)  # it answers after all
    assert not cadence.ignoring and cadence.answered == 1
