"""SDP, RTP, RTCP, RFC 4733, H.264 depacketizing: mutated and random input never raises anything but
the parser's own error, and the receivers' state stays bounded."""

from __future__ import annotations

import contextlib
import struct

from hypothesis import given
from hypothesis import strategies as st

from bridge.sip.codecs import offered_formats
from bridge.sip.offer_answer import OfferAnswer
from bridge.sip.sdp import Direction, SdpError, build_offer, parse_sdp
from rtp.dtmf import DtmfDecoder
from rtp.h264 import H264Depacketizer
from rtp.packet import PacketError, parse_rtp
from rtp.playout import PlayoutBuffer
from rtp.receiver import RtpReceiver
from rtp.rtcp import RtcpReporter, parse_sender_report
from tests.support.fuzz_budget import FUZZ
from tests.support.mutate import mutated
from tests.support.sipfakes import SDP_ANSWER
from tests.support.wire import rtp

VIDEO_ANSWER = SDP_ANSWER + (
    b"m=video 40002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    b"a=fmtp:96 packetization-mode=1;profile-level-id=42e01f;sprop-parameter-sets=Z0IAH5WoFAFuQA==,aM48gA==\r\n"
    b"a=rtcp-fb:96 nack pli\r\na=sendrecv\r\n"
)
SR = struct.pack("!BBHIIIIII", 0x80, 200, 6, 0x1234, 0xE0000000, 0, 160, 10, 1600)
FAR = ("192.0.2.9", 40000)


@FUZZ
@given(st.one_of(mutated(SDP_ANSWER), mutated(VIDEO_ANSWER), st.binary(max_size=600)))
def test_sdp_parsing_and_negotiation_raise_only_sdp_errors(body: bytes) -> None:
    with contextlib.suppress(SdpError):
        parse_sdp(body)
    offer = build_offer("192.0.2.2", 20000, Direction.SENDRECV, 7, formats=offered_formats(["pcmu", "opus", "h264"]))
    with contextlib.suppress(SdpError):
        OfferAnswer(offer).accept_answer(body)


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=200), mutated(rtp(0, 1, 160, 7, b"\xff" * 160))), max_size=60))
def test_rtp_receiver_takes_anything_and_keeps_a_bounded_buffer(datagrams: list[bytes]) -> None:
    receiver = RtpReceiver(FAR, playout=PlayoutBuffer(encoding="pcmu"))
    for index, data in enumerate(datagrams):
        with contextlib.suppress(PacketError):
            parse_rtp(data)
        receiver.datagram_received(data, FAR, index * 0.02)
    receiver.buffer.pull(160, len(datagrams) * 0.02)
    assert receiver.buffer.depth <= 8000 * 10  # never more than the buffer's capacity


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=12)), max_size=40))
def test_rfc4733_decoder_never_raises(packets: list[tuple[int, bytes]]) -> None:
    decoder = DtmfDecoder()
    for timestamp, payload in packets:
        decoder.receive(7, timestamp, payload)


@FUZZ
@given(st.one_of(mutated(SR), st.binary(max_size=100)))
def test_rtcp_parsing_never_raises(data: bytes) -> None:
    parse_sender_report(data)
    RtcpReporter(1, 0.0).receive(data, 1.0)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.booleans(), st.binary(max_size=300)), max_size=80))
def test_h264_depacketizer_takes_anything_with_bounded_state(packets: list[tuple[int, bool, bytes]]) -> None:
    depacketizer = H264Depacketizer(sprop="Z0IAH5WoFAFuQA==,aM48gA==")
    for index, (sequence, marker, payload) in enumerate(packets):
        depacketizer.push(sequence, (index // 3) * 3000, marker, payload, index * 0.01)
        depacketizer.poll(index * 0.01 + 0.2)
    assert len(depacketizer._pending) <= 64 + 1  # the reorder window


def test_an_endless_access_unit_is_dropped_not_kept() -> None:
    """One timestamp, fragments without an end or a marker: the unit stops growing at its bound."""
    depacketizer = H264Depacketizer(sprop="Z0IAH5WoFAFuQA==,aM48gA==")
    start = bytes([0x7C, 0x85]) + bytes(1200)  # FU-A start of an IDR
    middle = bytes([0x7C, 0x05]) + bytes(1200)
    depacketizer.push(0, 9000, False, start, 0.0)
    for sequence in range(1, 5000):  # 6 MB
        depacketizer.push(sequence, 9000, False, middle, sequence * 0.0001)
    unit = depacketizer._unit
    assert unit is not None and unit.broken and unit.fragment is None and unit.nals == []
    assert depacketizer.stats.oversized_units == 1
