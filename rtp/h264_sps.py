"""The picture size an H.264 sequence parameter set describes (sans-IO), for the call's counters.

ITU-T H.264 section 7.3.2.1.1 (seq_parameter_set_data), read as far as the frame cropping
fields; emulation prevention bytes (section 7.4.1) are removed first. Width and height are
the cropped size (section 7.4.2.1.1: CropUnitX/CropUnitY by chroma format), what a decoder
outputs: 640x360 is coded as 640x368 with 8 rows cropped.
"""

from __future__ import annotations

import re

HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_EMULATION = re.compile(b"\x00\x00\x03")


class SpsError(ValueError):
    """The parameter set ends before the fields it announces."""


class _Bits:
    def __init__(self, data: bytes) -> None:
        self._value, self._left = int.from_bytes(data, "big"), len(data) * 8

    def u(self, count: int) -> int:
        if count > self._left:
            raise SpsError("sequence parameter set truncated")
        self._left -= count
        return (self._value >> self._left) & ((1 << count) - 1)

    def ue(self) -> int:
        """Exp-Golomb, section 9.1: leading zeros, a one, as many bits again."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise SpsError("Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code % 2 else -(code // 2)


def picture_size(sps: bytes) -> tuple[int, int]:
    """(width, height) of the pictures the SPS NAL unit (with its header byte) describes."""
    bits = _Bits(_EMULATION.sub(b"\x00\x00", sps[1:]))
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level_idc
    bits.ue()  # seq_parameter_set_id
    chroma = _chroma_format(bits) if profile in HIGH_PROFILES else 1
    bits.ue()  # log2_max_frame_num_minus4
    _picture_order(bits)
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs, height_units = bits.ue() + 1, bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    crop = [bits.ue() for _ in range(4)] if bits.u(1) else [0, 0, 0, 0]
    unit_x = 2 if chroma in (1, 2) else 1
    unit_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - unit_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - unit_y * (crop[2] + crop[3])
    return width, height


def _chroma_format(bits: _Bits) -> int:
    """The High profiles' extra fields; returns ChromaArrayType (0 for separate colour planes)."""
    chroma = bits.ue()
    separate = bits.u(1) if chroma == 3 else 0
    bits.ue()  # bit_depth_luma_minus8
    bits.ue()  # bit_depth_chroma_minus8
    bits.u(1)  # qpprime_y_zero_transform_bypass_flag
    if bits.u(1):  # seq_scaling_matrix_present_flag
        for index in range(8 if chroma != 3 else 12):
            if bits.u(1):
                _skip_scaling_list(bits, 16 if index < 6 else 64)
    return 0 if separate else chroma


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    """Section 7.3.2.1.1.1: delta-coded scale values until next_scale becomes 0."""
    last = next_scale = 8
    for _ in range(size):
        if next_scale:
            next_scale = (last + bits.se() + 256) % 256
        last = next_scale or last


def _picture_order(bits: _Bits) -> None:
    kind = bits.ue()
    if kind == 0:
        bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif kind == 1:
        bits.u(1)  # delta_pic_order_always_zero_flag
        bits.se()  # offset_for_non_ref_pic
        bits.se()  # offset_for_top_to_bottom_field
        for _ in range(min(bits.ue(), 255)):
            bits.se()
