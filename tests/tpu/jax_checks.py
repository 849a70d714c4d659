"""Checks run inside .venv-tpu by tests/tpu/test_tpu_stack.py (not collected by the main run:
they need JAX). SGLANG_TPU_EMULATE=1 puts the tpu backend on JAX's CPU platform."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from sglang.engine.engine import Engine  # noqa: E402
from tiny_models import hf_greedy, save_tiny_model  # noqa: E402

NATIVE = {
    "norm.rms",
    "act.silu_mul",
    "act.gelu_mul",
    "rope",
    "attention.extend",
    "attention.decode",
    "gemm.dense",
}
# The cases past these sizes are the same kernels at larger shapes: JAX compiles one program per
# shape, and the interpreter walks Pallas grids one program at a time, so they are left out.
BIG = ("K1000", "K4096", "B8-ctx1000", "B6-softcap", "prefix200", "mixed-window", "D4096", "I14336")
PROMPTS = [[1, 17, 33, 250, 99, 7, 412, 5], [1, 300, 301, 302]]
MAX_NEW = 24


def test_conformance_on_jax_cpu(tmp_path):
    report = os.environ.get("SGLANG_TPU_REPORT") or str(tmp_path / "tpu-jax-cpu.json")
    cmd = [
        sys.executable,
        "-m",
        "sglang.cli.main",
        "conformance",
        "--backend",
        "tpu",
        "--report",
        report,
        "-p",
        "no:cacheprovider",
        "-q",
        "-k",
        " and ".join(f"not {b}" for b in BIG),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    section = json.loads(Path(report).read_text())["backends"]["tpu"]
    assert section["summary"]["failed"] == 0
    assert NATIVE <= set(section["native_ops"]), NATIVE - set(section["native_ops"])
    print(proc.stdout[proc.stdout.find("sglang conformance") :])


@pytest.mark.parametrize("arch", ["llama"])
def test_tiny_llama_greedy_matches_transformers(tmp_path, arch):
    from sglang.backend.selection import select_platform

    platform = select_platform("tpu")  # what the engine's processes select, as they do
    for op, kernel in (
        ("attention.decode", "tpu.pallas_decode"),
        ("norm.rms", "tpu.pallas_rms_norm"),
    ):
        assert platform.resolve(op).chosen.name == kernel
    path = save_tiny_model(arch, str(tmp_path / arch))
    with Engine(
        model_path=path,
        device="tpu",
        dtype="float32",
        skip_tokenizer_init=True,
        max_total_tokens=1024,
        log_level="warning",
    ) as engine:
        for prompt in PROMPTS:
            out = engine.generate(
                input_ids=prompt,
                sampling_params={"max_new_tokens": MAX_NEW, "temperature": 0, "ignore_eos": True},
            )
            assert out["output_ids"] == hf_greedy(path, prompt, MAX_NEW), prompt
