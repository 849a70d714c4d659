"""`sglang serve [--model-path PATH] [--device NAME] ...`: the OpenAI-compatible server."""

from __future__ import annotations

import argparse

from sglang.server_args import add_cli_args, from_cli

ACCEPTS_EXTRA = False


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


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a model over an OpenAI-compatible HTTP API")
    add_cli_args(p, LazyChoices(attention_backend_choices))


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from sglang.server.launch import serve

    return serve(from_cli(args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sglang.launch_server", description=__doc__)
    add_cli_args(parser, LazyChoices(attention_backend_choices))
    return run(parser.parse_args(argv), [])
