"""H.264 helpers on byte vectors: Annex B splitting, AVCC framing, AVCDecoderConfigurationRecord."""

from __future__ import annotations

import pytest

from bridge.media.h264 import H264Error, decoder_configuration, parameter_sets, split_annexb, to_avcc

SPS = bytes.fromhex("674d401fe8802800b7fe")  # nal_unit_type 7, profile_idc 77 (Main), level 31
PPS = bytes.fromhex("68ebecb2")
IDR = bytes.fromhex("65888040")


def test_annexb_with_three_and_four_byte_start_codes() -> None:
    stream = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS + b"\x00\x00\x00\x01" + IDR
    assert split_annexb(stream) == [SPS, PPS, IDR]
    assert split_annexb(b"no start code") == []
    assert parameter_sets(split_annexb(stream)) == (SPS, PPS)


def test_avcc_prefixes_each_unit_with_its_length() -> None:
    assert to_avcc([SPS, IDR]) == b"\x00\x00\x00\x0a" + SPS + b"\x00\x00\x00\x04" + IDR


def test_decoder_configuration_record_byte_by_byte() -> None:
    # ISO/IEC 14496-15 5.3.3.1.2: version 1, profile, compatibility, level, 0xFC|lengthSizeMinusOne(3),
    # 0xE0|numOfSequenceParameterSets(1), length + SPS, numOfPictureParameterSets(1), length + PPS.
    expected = bytes([1, 0x4D, 0x40, 0x1F, 0xFF, 0xE1, 0, 10]) + SPS + bytes([1, 0, 4]) + PPS
    assert decoder_configuration(SPS, PPS) == expected


def test_parameter_sets_must_be_what_they_claim() -> None:
    with pytest.raises(H264Error):
        decoder_configuration(PPS, SPS)
    with pytest.raises(H264Error):
        parameter_sets([IDR])
