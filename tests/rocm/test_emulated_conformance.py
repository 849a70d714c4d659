"""The rocm backend's kernels under the conformance suite, in its emulation mode: the shared
Triton kernels with MI300X's (gfx942) launch tables, in Triton's interpreter on the CPU.

Run the way a user runs it (`SGLANG_ROCM_EMULATE=gfx942 sglang conformance --backend rocm`),
in a subprocess, over the spec cases small enough for the interpreter (the deselected ones are
the same kernels at larger sizes: K >= 1000 GEMMs, 1000-key contexts, 150k-token vocabularies,
the 4096-wide norm and 14336-wide activation rows, the 1024-wide MoE). 0 failures, and every
op family with a rocm kernel that runs here must be served natively. Set SGLANG_ROCM_REPORT to
keep the JSON report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("sglang_rocm")
pytest.importorskip("triton")

BIG = (
    "K1000",
    "K1056",
    "K1152",
    "K4096",
    "B8-ctx1000",
    "B6-softcap",
    "prefix200",
    "mixed-window",
    "D1024",
    "V32000",
    "V32001",
    "V32064",
    "V128256",
    "V151936",
    "V151937",
    "D4096",
    "I14336",
    "B64-",
)
DESELECT = " and ".join(f"not {b}" for b in BIG)
# Every op family the shared kernels serve; gemm.int8 (cuBLASLt-only on cuda) and gemm.fp8
# (torch._scaled_mm / aiter: no fp8 on gfx942 in OCP format) fall back or skip.
NATIVE = {
    "act.gelu_mul",
    "act.silu_mul",
    "attention.decode",
    "attention.extend",
    "attention.mla_decode",
    "attention.mla_extend",
    "gemm.dense",
    "gemm.fp4",
    "gemm.int4",
    "grammar.apply_bitmask",
    "kv.store",
    "moe.experts",
    "moe.route",
    "norm.rms",
    "rope",
    "sampling.sample",
}


def test_rocm_emulated_conformance(tmp_path):
    report = os.environ.get("SGLANG_ROCM_REPORT") or str(tmp_path / "rocm-gfx942.json")
    env = {**os.environ, "SGLANG_ROCM_EMULATE": "gfx942"}
    cmd = [
        sys.executable,
        "-m",
        "sglang.cli.main",
        "conformance",
        "--backend",
        "rocm",
        "--report",
        report,
        "-k",
        DESELECT,
        "-p",
        "no:cacheprovider",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    section = json.loads(open(report).read())["backends"]["rocm"]
    assert section["summary"]["failed"] == 0
    assert section["summary"]["passed"] > 300
    assert "gfx942" in section["capabilities"]["extensions"]["gfx_arch"]
    assert NATIVE <= set(section["native_ops"]), NATIVE - set(section["native_ops"])
    print(proc.stdout[proc.stdout.find("sglang conformance") :])


def test_auto_never_picks_the_emulation(monkeypatch):
    from sglang.backend.discovery import discover
    from sglang.backend.selection import choose_backend

    monkeypatch.setenv("SGLANG_ROCM_EMULATE", "gfx942")
    found = discover()
    assert found.backends["rocm"].available
    assert choose_backend(found, "auto")[0].name != "rocm"
    assert choose_backend(found, "rocm")[0].name == "rocm"
