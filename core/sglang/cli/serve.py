"""`sglang serve [--model-path PATH] [--device NAME] ...`: the OpenAI-compatible server (also
`python -m sglang.launch_server`). A failed start prints one line, `error: ...`, and exits with
the code of its class (sglang.engine.preflight.EXIT_CODES)."""

from __future__ import annotations

import argparse
import sys

from sglang.cli.args import add_cli_args, from_cli
from sglang.engine.preflight import EXIT_USAGE, StartupError, exit_codes_text

ACCEPTS_EXTRA = False
DESCRIPTION = "Serve a model over SGLang's native and OpenAI-compatible HTTP APIs."


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default: "(default: X)" after its help, "(default: off)" for a
    switch; a flag whose default is None says in its own help what unset means."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or "default" in text or action.default is None:
            return text
        if action.default is argparse.SUPPRESS:
            return text
        if isinstance(action, argparse._StoreTrueAction):
            return f"{text} (default: off)"
        return f"{text} (default: %(default)s)"


def attention_backend_choices() -> list[str]:
    """Backends that registered attention kernels here (computed, never written out)."""
    from sglang.backend.discovery import discover

    found = discover()
    names = {
        k.backend
        for op in ("attention.extend", "attention.decode")
        for k in found.registry.kernels(op)
    }
    return sorted(names)


class LazyChoices:
    """argparse choices computed on first use, so other subcommands never run discovery."""

    def __init__(self, compute) -> None:
        self._compute, self._values = compute, None

    def _get(self) -> list[str]:
        if self._values is None:
            self._values = self._compute()
        return self._values

    def __contains__(self, item) -> bool:
        return item in self._get()

    def __iter__(self):
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


PARSER_OPTIONS = dict(
    usage="%(prog)s [options]  (all options: --help)",
    description=DESCRIPTION,
    epilog=exit_codes_text(),
    formatter_class=HelpFormatter,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help=DESCRIPTION.lower().rstrip("."), **PARSER_OPTIONS)
    add_cli_args(p, LazyChoices(attention_backend_choices))


def run(args: argparse.Namespace, extra: list[str]) -> int:
    try:
        server_args = from_cli(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    from sglang.server.launch import serve

    try:
        return serve(server_args)
    except StartupError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sglang.launch_server", **PARSER_OPTIONS)
    add_cli_args(parser, LazyChoices(attention_backend_choices))
    args, extra = parser.parse_known_args(argv)
    if extra:
        from sglang.cli.main import reject_unknown

        reject_unknown(parser, extra)
    return run(args, [])
