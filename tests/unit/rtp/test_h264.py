"""RFC 6184 depacketization on hand-built packets: single NAL, STAP-A, FU-A, loss, reordering."""

from __future__ import annotations

import base64

from rtp.h264 import AccessUnit, H264Depacketizer, KeyframeNeeded, ParameterSets, parse_sprop

SPS = bytes([0x67, 0x42, 0xE0, 0x1F, 0xDA, 0x02, 0x80])  # nal_unit_type 7, profile 66 level 31
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])  # type 8
IDR = bytes([0x65, 0x88, 0x84]) + bytes(range(200))  # type 5, nal_ref_idc 3
SLICE = bytes([0x41, 0x9A, 0x02]) + bytes(range(50))  # type 1


def stap_a(*nals: bytes) -> bytes:
    """RFC 6184 5.7.1 figure 7: STAP-A NAL header (F=0, NRI=3, type 24), then size + NAL unit."""
    return bytes([0x78]) + b"".join(len(n).to_bytes(2, "big") + n for n in nals)


def fu_a(nal: bytes, size: int) -> list[bytes]:
    """RFC 6184 5.8 figure 14: FU indicator (F|NRI of the NAL, type 28), FU header (S, E, type)."""
    body, chunks = nal[1:], []
    for offset in range(0, len(body), size):
        start, end = offset == 0, offset + size >= len(body)
        header = (0x80 if start else 0) | (0x40 if end else 0) | (nal[0] & 0x1F)
        chunks.append(bytes([(nal[0] & 0xE0) | 28, header]) + body[offset : offset + size])
    return chunks


def feed(d: H264Depacketizer, packets: list[tuple[int, int, bool, bytes]], now: float = 0.0) -> list[object]:
    events: list[object] = []
    for seq, ts, marker, payload in packets:
        events += d.push(seq, ts, marker, payload, now)
    return events


def units(events: list[object]) -> list[AccessUnit]:
    return [e for e in events if isinstance(e, AccessUnit)]


def test_stap_a_parameter_sets_and_fragmented_idr_make_one_keyframe() -> None:
    d = H264Depacketizer()
    parts = fu_a(IDR, 60)
    packets = [(100, 9000, False, stap_a(SPS, PPS))] + [
        (101 + i, 9000, i == len(parts) - 1, part) for i, part in enumerate(parts)
    ]
    events = feed(d, packets)
    assert ParameterSets(SPS, PPS) in events
    (unit,) = units(events)
    assert unit.keyframe and unit.nals == (SPS, PPS, IDR) and unit.timestamp == 9000
    (second,) = units(feed(d, [(105, 12600, True, SLICE)]))
    assert second.nals == (SLICE,) and not second.keyframe


def test_sprop_parameter_sets_are_used_until_in_band_ones_arrive() -> None:
    sprop = f"{base64.b64encode(SPS).decode()},{base64.b64encode(PPS).decode()}"
    assert parse_sprop(sprop) == [SPS, PPS]
    d = H264Depacketizer(sprop=sprop)
    events = feed(d, [(1, 0, True, IDR)])
    assert units(events)[0].nals == (SPS, PPS, IDR)
    new_sps = SPS[:-1] + b"\x81"  # a resolution change mid-call: a new sequence header is due
    events = feed(d, [(2, 3000, False, new_sps), (3, 3000, True, IDR)])
    assert ParameterSets(new_sps, PPS) in events and units(events)[0].nals == (new_sps, PPS, IDR)


def test_without_an_idr_nothing_is_output_and_a_keyframe_is_asked_for_once() -> None:
    d = H264Depacketizer(sprop=base64.b64encode(SPS).decode() + "," + base64.b64encode(PPS).decode())
    events = feed(d, [(1, 0, True, SLICE), (2, 3000, True, SLICE)])
    assert units(events) == [] and events.count(KeyframeNeeded("start")) == 1
    assert d.stats.discarded_units == 2
    assert units(feed(d, [(3, 6000, True, IDR)]))[0].keyframe


def test_reordered_packets_are_put_back_in_order() -> None:
    d = H264Depacketizer()
    parts = fu_a(IDR, 50)
    packets = [(10, 0, False, stap_a(SPS, PPS))] + [(11 + i, 0, i == len(parts) - 1, p) for i, p in enumerate(parts)]
    shuffled = [packets[0], packets[2], packets[1], *packets[3:]]
    (unit,) = units(feed(d, shuffled))
    assert unit.nals == (SPS, PPS, IDR) and d.stats.reordered_packets == 1 and d.stats.lost_packets == 0


def test_a_lost_fragment_discards_until_the_next_idr_and_asks_for_one() -> None:
    d = H264Depacketizer(max_wait=0.05)
    feed(d, [(1, 0, False, stap_a(SPS, PPS)), (2, 0, True, IDR)])
    parts = fu_a(SLICE, 20)
    events = feed(d, [(3, 3000, False, parts[0]), (5, 3000, True, parts[2])], now=1.0)
    assert units(events) == []
    assert d.deadline() == 1.05
    events = d.poll(1.06)  # the gap is given up: the picture cannot be decoded
    assert KeyframeNeeded("loss") in events and units(events) == [] and d.stats.lost_packets == 1
    assert units(feed(d, [(6, 6000, True, SLICE)], now=1.1)) == []  # its references are gone
    (idr,) = units(feed(d, [(7, 9000, True, IDR)], now=1.2))
    assert idr.keyframe and idr.nals == (SPS, PPS, IDR)


def test_sequence_wrap_and_interleaved_mode_packets() -> None:
    d = H264Depacketizer()
    events = feed(d, [(65534, 0, False, stap_a(SPS, PPS)), (65535, 0, True, IDR), (0, 3000, True, SLICE)])
    assert [u.timestamp for u in units(events)] == [0, 3000]
    feed(d, [(1, 6000, True, bytes([0x79, 0, 0])), (2, 6000, True, bytes([0x7D, 0x80, 1]))])  # STAP-B, FU-B
    assert d.stats.unsupported_packets == 2


def test_malformed_payloads_are_counted_not_raised() -> None:
    d = H264Depacketizer()
    events = feed(d, [(1, 0, True, b""), (2, 0, True, bytes([0x78, 0x00, 0x50, 0x67])), (3, 0, True, bytes([0x7C]))])
    assert units(events) == [] and d.stats.malformed_packets == 3
