"""`sglang conformance --backend NAME --report r.json` passes for every backend that runs on a CPU
machine, and its JSON report lists every check. This is the issue's acceptance check, run the
way a user runs it: the installed command, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sglang.backend.discovery import discover
from sglang.ops import all_specs

CPU_BACKENDS = ("reference", "xeon", "acme")


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sglang.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    found = discover().backends
    out = {}
    for name in CPU_BACKENDS:
        if name not in found or not found[name].available:
            continue
        path = tmp_path_factory.mktemp("conf") / f"{name}.json"
        proc = run_cli("conformance", "--backend", name, "--report", str(path))
        out[name] = (proc, path)
    return out


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_conformance_cli_passes(reports, backend, example_backend):
    if backend == "acme" and not example_backend:
        pytest.skip("the example vendor backend is not installed (ci/test.sh installs it)")
    if backend not in reports:
        pytest.skip(f"backend {backend} is not installed here")
    proc, path = reports[backend]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "sglang conformance" in proc.stdout  # the table is printed
    doc = json.loads(path.read_text())
    section = doc["backends"][backend]
    checks = section["checks"]
    assert section["summary"]["failed"] == 0
    assert len(checks) == section["summary"]["total"]
    for check in checks:
        assert check["status"] in ("passed", "skipped", "xfailed")
        assert {"id", "status", "error", "tolerance", "capabilities", "versions"} <= set(check)
        if check["status"] == "skipped":
            assert check["reason"], check["id"]
    ops = {c["op"] for c in checks}
    assert {s.name for s in all_specs()} <= ops, "every op spec appears in the report"
    assert any(op.startswith("comm.") for op in ops), "communicator checks appear in the report"
    assert section["capabilities"]["dtypes"]
    assert section["versions"]["torch"]


def test_reference_and_xeon_cover_every_op_family_with_200_checks(reports):
    if not {"reference", "xeon"} <= set(reports):
        pytest.skip("reference and xeon are both needed")
    total = 0
    for name in ("reference", "xeon"):
        checks = json.loads(reports[name][1].read_text())["backends"][name]["checks"]
        passed_ops = {c["op"] for c in checks if c["status"] == "passed"}
        missing = {s.name for s in all_specs()} - passed_ops
        assert not missing, f"{name}: no passing check for {sorted(missing)}"
        total += len(checks)
    assert total >= 200


def test_unknown_backend_is_a_clear_error():
    proc = run_cli("conformance", "--backend", "no-such-chip")
    assert proc.returncode != 0
    assert "no-such-chip" in proc.stdout + proc.stderr


def test_reports_check_every_kernel_the_models_and_the_mutants(reports):
    """Issue 18: rows for every registered kernel, model-level checks that pass, and every
    mutant of the backend's kernels killed, counted in the report."""
    found = discover()
    for name, (proc, path) in reports.items():
        section = json.loads(path.read_text())["backends"][name]
        registered = {k.name for k in found.registry.kernels(backend=name)}
        assert registered <= set(section["kernels"]), name
        models = [c for c in section["checks"] if c["op"].startswith("model.")]
        assert {c["op"] for c in models} == {"model.llama", "model.qwen3"}, name
        assert any(c["status"] == "passed" for c in models), name
        mutation = section["mutation"]
        assert mutation["mutants"] > 0 and mutation["killed"] == mutation["mutants"], name
        assert f"{mutation['killed']} of {mutation['mutants']} mutants killed" in proc.stdout
