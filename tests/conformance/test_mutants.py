"""The mutation test: for every op family, broken copies of the CPU backends' real kernels
(scaled by 1.01, one element off, transposed strides, wrong output dtype, a write into an
input) fail conformance in every dtype they run (sglang.conformance.mutants)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sglang.backend.discovery import discover
from sglang.conformance.mutants import MUTANTS, mutation_summary, run_mutants
from sglang.conformance.runner import Target
from sglang.ops import all_specs

# The mutants that cannot be expressed on an op, and why (anything else must be killed).
NOT_APPLICABLE = {
    ("sampling.sample", "scaled"): "no float output",
    ("sampling.sample", "transposed"): "1-D output",
    ("kv.store", "wrong_dtype"): "writes into the caller's cache",
    ("rope.kv_store", "wrong_dtype"): "writes into the caller's q_out and caches",
    ("grammar.apply_bitmask", "wrong_dtype"): "writes into the caller's logits",
}


@pytest.mark.parametrize("backend", ["reference", "xeon", "acme"])
def test_every_mutant_is_killed_in_every_dtype_it_runs(backend):
    found = discover()
    b = found.backends.get(backend)
    if b is None or not b.available:
        pytest.skip(f"backend {backend} is not available here")
    target = Target(b, found.registry, b.create_runtime(device_index=0))
    results = run_mutants(target, all_specs())
    ops = {s.name for s in all_specs() if found.registry.kernels(s.name, backend)}
    assert {(r.op, r.mutant) for r in results} == {(op, m.name) for op in ops for m in MUTANTS}
    for r in results:
        if (r.op, r.mutant) in NOT_APPLICABLE:
            assert r.not_applicable, (r.op, r.mutant)
            continue
        assert r.not_applicable is None, (r.op, r.mutant, r.not_applicable)
        assert r.killed, f"{r.kernel}~{r.mutant} survived in {r.survived_in}"
        dtypes = {c.dtype for c in all_specs_by_name()[r.op].cases()}
        runnable = {str(d).removeprefix("torch.") for d in dtypes} & set(b.capabilities.dtypes)
        assert set(r.killed_in) == runnable, (r.op, r.mutant, r.killed_in)
    summary = mutation_summary(results)
    assert summary["killed"] == summary["mutants"] > 0


def all_specs_by_name():
    return {s.name: s for s in all_specs()}


def test_mutation_mode_reports_the_count(tmp_path):
    report = tmp_path / "mutants.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sglang.cli.main",
            "conformance",
            "--backend",
            "reference",
            "--mode",
            "mutation",
            "--ops",
            "norm.rms,sampling.sample",
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reference: 8 of 8 mutants killed (2 not applicable)" in proc.stdout
    summary = json.loads(report.read_text())["backends"]["reference"]["summary"]
    assert summary == {"mutants": 8, "killed": 8, "survived": [], "not_applicable": 2}
