"""`sglang <command>`: backends, conformance (serve comes with the server)."""

from __future__ import annotations

import argparse
import logging
import sys

from sglang.cli import backends, conformance, serve

COMMANDS = {"backends": backends, "conformance": conformance, "serve": serve}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sglang", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        module.add_parser(sub)
    args, extra = parser.parse_known_args(argv)
    level = getattr(args, "log_level", "warning")
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")
    command = COMMANDS[args.command]
    if extra and not getattr(command, "ACCEPTS_EXTRA", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return command.run(args, extra) or 0


if __name__ == "__main__":
    sys.exit(main())
