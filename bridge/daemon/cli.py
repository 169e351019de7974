"""Command line: ``sip-rtmp-bridge [serve] --config FILE``, ``check-config``, and API client commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvloop

from bridge import __version__
from bridge.config import ConfigError, load_config
from bridge.daemon.client_cli import add_client_commands, run_client
from bridge.daemon.run import serve
from bridge.history import HistoryUnavailable
from bridge.ops.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    # --config and --url work before or after the command (suppressed defaults do not overwrite).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML config file")
    common.add_argument("--url", default=argparse.SUPPRESS, help="REST API base URL for client commands")
    parser = argparse.ArgumentParser(prog="sip-rtmp-bridge", description=__doc__, parents=[common])
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="action")
    serve_parser = sub.add_parser("serve", help="run the daemon (the default)", parents=[common])
    for accepting in (parser, serve_parser):  # ``sip-rtmp-bridge --log-format json`` serves too
        accepting.add_argument(
            "--log-format", choices=["text", "json"], default=argparse.SUPPRESS, help="overrides log.format"
        )
    check = sub.add_parser("check-config", help="validate a config file and exit", parents=[common])
    check.add_argument("file", type=Path, nargs="?", help="the config file (or --config FILE)")
    add_client_commands(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.action = args.action or "serve"
    args.config = getattr(args, "file", None) or getattr(args, "config", None)
    args.url = getattr(args, "url", None)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"sip-rtmp-bridge: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.action == "check-config":
        print(f"{args.config or 'built-in defaults'}: configuration is valid")
        return 0
    if args.action != "serve":
        return run_client(args, config)
    log_format = getattr(args, "log_format", None) or config.log.format
    config = config.model_copy(update={"log": config.log.model_copy(update={"format": log_format})})
    configure_logging(config.log.level, log_format)
    try:
        uvloop.run(serve(config, args.config))  # libuv: sockets, timers and TLS in C (WebSocket ingest is per-packet)
    except (OSError, HistoryUnavailable) as exc:
        print(f"sip-rtmp-bridge: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
