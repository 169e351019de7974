"""Open the configured output encoder once, in its own process, and exit 0 if it works.

The daemon asks this at start-up and after a reload that changes ``[media]`` so
``/readyz`` can say whether calls could be encoded. It runs apart from the daemon, which
never imports PyAV (only media workers and this probe do), and its exit status is the
whole answer: 0 the encoder opened, 1 it did not (the reason goes to stderr).

Usage: ``python -m bridge.media.probe CODEC SAMPLE_RATE BITRATE [AAC_CODER]``.
"""

from __future__ import annotations

import sys

from bridge.channel.probe import parse_arguments


def main(argv: list[str]) -> int:
    try:
        output = parse_arguments(argv)
        from bridge.media.encoder import new_encoder  # PyAV, imported here: a failure is one line of answer

        new_encoder(output)
    except Exception as exc:  # any failure to open is the answer, reported in one line
        print(f"encoder could not be opened: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
