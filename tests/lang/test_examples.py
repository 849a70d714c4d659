"""Each example in examples/frontend runs against the real server (--url) and exits cleanly
with its report."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "examples", "frontend")
)


def run_example(name: str, url: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, name), "--url", url, *args],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_few_shot_classification(url):
    out = run_example("few_shot_classification.py", url)
    assert "accuracy" in out and "served from cache" in out


def test_tree_of_thought(url):
    out = run_example("tree_of_thought.py", url, "--branches", "2")
    assert out.count("-> correct?") == 2 and "answer:" in out


def test_json_extraction(url, constrained):
    if not constrained:
        pytest.skip("the server does not constrain generation yet (structured outputs)")
    out = run_example("json_extraction.py", url)
    assert out.count('"age"') == 2


def test_multi_turn_chat(url):
    out = run_example("multi_turn_chat.py", url, "--stream")
    assert out.count("assistant:") == 3
