"""A script that used an Engine exits cleanly: code 0, its scheduler gone, and nothing printed at
teardown (the heap is frozen at exit, engine._freeze_heap_at_exit, except where a nanobind
extension would report what stays unfreed)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import atexit, gc, sys

    # Registered first, so run last: whether the Engine's exit handler froze the heap.
    atexit.register(lambda: print("FROZEN", gc.get_freeze_count() > 0, flush=True))
    import sglang

    if sys.argv[1] == "triton":  # a nanobind extension, as on GPU machines: no freeze
        import triton  # noqa: F401

    if __name__ == "__main__":
        engine = sglang.Engine()
        out = engine.generate("The capital of France is", {"max_new_tokens": 4, "temperature": 0})
        print("PIDS", *engine.server_info["rank_pids"])
        print("TEXT", out["text"])
        engine.shutdown()
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("variant", ["plain", "triton"])
def test_engine_script_exits_cleanly_and_leaves_no_process(tmp_path, variant):
    if variant == "triton":
        pytest.importorskip("triton")
    script = tmp_path / "example.py"
    script.write_text(SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), variant], capture_output=True, text=True, timeout=300,
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    assert "Paris" in lines["TEXT"]
    pids = [int(p) for p in lines["PIDS"].split()]
    assert pids and not any(_alive(p) for p in pids)
    assert lines["FROZEN"] == str(variant == "plain")
    assert "leaked" not in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]


def test_nanobind_extensions_are_detected_at_exit():
    """The exit freeze is skipped where nanobind would print what it leaves unfreed."""
    pytest.importorskip("triton")
    code = (
        "from sglang.engine.engine import _nanobind_loaded as n; a = n(); import triton; "
        "print(a, n())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**os.environ},
    )  # fmt: skip
    assert out.stdout.split() == ["False", "True"], out.stderr[-2000:]
