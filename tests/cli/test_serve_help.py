"""`sglang serve --help`: every flag has help text and shows its default, flags come in groups,
and the exit codes are documented there and in the README as the code defines them."""

from __future__ import annotations

import argparse
import pathlib

from sglang.cli import serve
from sglang.engine.preflight import EXIT_CODES

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sglang serve", **serve.PARSER_OPTIONS)
    serve.add_cli_args(parser, ["reference", "xeon"])
    return parser


def test_every_flag_has_help_and_shows_its_default():
    parser = serve_parser()
    formatter = parser._get_formatter()
    flags = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(flags) >= 35
    for action in flags:
        assert action.help, f"{action.option_strings[0]} has no help"
        shown = formatter._get_help_string(action) % {"default": action.default}
        assert "default" in shown, f"{action.option_strings[0]}: no default in {shown!r}"


def test_flags_are_grouped():
    parser = serve_parser()
    titles = {g.title for g in parser._action_groups if g._group_actions}
    assert {"model and tokenizer", "device and kernels", "HTTP server"} <= titles
    grouped = {a.dest for g in parser._action_groups[2:] for a in g._group_actions}
    assert grouped == {a.dest for a in parser._actions if a.dest != "help"}


def test_exit_codes_in_help_and_readme():
    text = serve_parser().format_help()
    readme = README.read_text()
    for code, meaning in EXIT_CODES.items():
        assert f"  {code}  {meaning}" in text
        assert f"| {code} |" in readme, f"exit code {code} missing from the README"


def test_defaults_match_server_args():
    from sglang.cli.args import from_cli
    from sglang.server_args import ServerArgs

    args = from_cli(serve_parser().parse_args([]))
    assert args == ServerArgs()
