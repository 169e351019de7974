"""The encoder probe's command line: what the daemon passes to ``python -m bridge.media.probe``."""

from __future__ import annotations

from bridge.model import OutputSpec

USAGE = "usage: python -m bridge.media.probe CODEC SAMPLE_RATE BITRATE [AAC_CODER]"


def probe_arguments(output: OutputSpec) -> list[str]:
    """The command-line arguments that describe ``output`` to :func:`main`."""
    return [output.codec, str(output.sample_rate), str(output.bitrate), output.aac_coder]


def parse_arguments(argv: list[str]) -> OutputSpec:
    """The output described by ``argv`` (the inverse of :func:`probe_arguments`)."""
    if len(argv) not in (3, 4):
        raise ValueError(USAGE)
    codec, rate, bitrate = argv[:3]
    coder = argv[3] if len(argv) == 4 else ""
    return OutputSpec(codec, int(rate), int(bitrate), coder)
