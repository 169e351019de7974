"""Command line: ``sip-rtmp-bridge [serve] --config FILE``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from bridge import __version__
from bridge.config import ConfigError, load_config
from bridge.daemon import serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sip-rtmp-bridge", description=__doc__)
    parser.add_argument("action", nargs="?", default="serve", choices=["serve", "check-config"])
    parser.add_argument("--config", type=Path, default=None, help="TOML config file")
    parser.add_argument("--version", action="version", version=__version__)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"sip-rtmp-bridge: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.action == "check-config":
        print("configuration is valid")
        return 0
    logging.basicConfig(
        level=config.log.level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        print(f"sip-rtmp-bridge: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
