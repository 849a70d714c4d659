"""`sglang <command>`: backends, conformance, serve."""

from __future__ import annotations

import argparse
import difflib
import logging
import sys

from sglang.cli import backends, conformance, serve

COMMANDS = {"backends": backends, "conformance": conformance, "serve": serve}


def reject_unknown(parser: argparse.ArgumentParser, extra: list[str]) -> None:
    """argparse's error (exit 2) for unknown flags, naming the closest known flag."""
    known = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    hints = []
    for arg in extra:
        flag = arg.split("=", 1)[0]
        close = difflib.get_close_matches(flag, known, n=1) if flag.startswith("--") else []
        if close:
            hints.append(f"{flag} (did you mean {close[0]}?)")
    message = f"unrecognized arguments: {' '.join(extra)}"
    parser.error(message + (f"; {'; '.join(hints)}" if hints else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sglang", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    args, extra = parser.parse_known_args(argv)
    level = getattr(args, "log_level", "warning")
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")
    command = COMMANDS[args.command]
    if extra and not getattr(command, "ACCEPTS_EXTRA", False):
        reject_unknown(sub.choices[args.command], extra)
    return command.run(args, extra) or 0


if __name__ == "__main__":
    sys.exit(main())
