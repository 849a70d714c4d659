"""benchmarks/sass_loop_stats.py on the CPU: the tensor-core decode GEMVs compiled for sm_90,
their main loop found and its instruction mix counted. Skipped where Triton has no NVIDIA
backend tools."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)
TOOLS = os.path.join(os.path.dirname(importlib.util.find_spec("triton").origin), "backends",
                     "nvidia", "bin")  # fmt: skip
if not all(os.path.exists(os.path.join(TOOLS, t)) for t in ("ptxas", "cuobjdump")):
    pytest.skip("triton's NVIDIA tools are not installed", allow_module_level=True)

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "sass_loop_stats.py")


def run(*args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, SCRIPT, "--json", *args], capture_output=True,
                       text=True, env=env, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    return json.loads(r.stdout.strip().splitlines()[-1])


def test_int4_mma_loop():
    s = run("--kernel", "int4-mma")
    # one 128-row tile of 128 input rows a step: 16 wgmma k16 instructions over its 8 KiB
    assert s["weight_bytes_per_iteration"] == 8192
    assert s["mix"]["HGMMA"] == 16 and s["mix"]["LOP3"] >= 64  # two nibbles per LOP3
    assert s["stack_bytes"] == 0 and s["registers"] > 0
    # the per-step scales drain the MMA each step (what a tile-scaled variant would avoid)
    assert s["loop_dot_waits_by_pending"] == {"0": 1}


def test_fp8_block_mma_loop_and_launch_override():
    s = run("--kernel", "fp8-block-mma", "--launch", '{"block_n": 128, "num_warps": 8}')
    assert s["launch"]["block_n"] == 128 and s["launch"]["num_warps"] == 8
    assert s["weight_bytes_per_iteration"] == 128 * 128
    assert s["mix"].get("QGMMA", 0) > 0  # e4m3 x e4m3 wgmma
    assert s["warp_instructions_per_kib"] == round(
        s["loop_instructions_per_warp"] * 8 * 1024 / (128 * 128), 1
    )
