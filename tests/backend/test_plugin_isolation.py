"""A broken plugin never takes the others down: tested with REAL installed entry points.

The fixture package tests/fixtures/broken-backend is installed into a temporary directory
(`pip install --no-deps --no-build-isolation --target`) and put on PYTHONPATH of a fresh
`sglang` process. Its backends: `broken` raises on import, `exits` calls sys.exit(1) on import
(as IPEX does against another torch), `hangs` and `dies` load fine but their communicators
hang or end the process in a collective.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "broken-backend"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The fixture package, built from a copy (the build writes next to its sources)."""
    work = tmp_path_factory.mktemp("broken-backend")
    source = work / "src"
    shutil.copytree(FIXTURE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return target


def env_with(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.pop("SGLANG_DEVICE", None)
    return env


def backends_json(site: Path, *args: str) -> tuple[int, dict, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "sglang.cli.main", "backends", "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env_with(site),
    )
    return proc.returncode, json.loads(proc.stdout), proc.stderr


@pytest.fixture(scope="module")
def listing(site) -> tuple[int, dict]:
    rc, doc, _ = backends_json(site)
    return rc, {b["name"]: b for b in doc["backends"]}, doc


def test_import_failure_is_recorded_with_its_traceback(listing):
    _, by_name, _ = listing
    broken = by_name["broken"]
    assert broken["error_stage"] == "import" and not broken["available"]
    assert "Traceback" in broken["error"]
    assert "RuntimeError: simulated vendor import failure" in broken["error"]
    assert "sglang_broken_fixture/raises.py" in broken["error"]
    assert broken["distribution"] == "sglang-broken-fixture"


def test_sys_exit_on_import_does_not_end_the_process(listing):
    rc, by_name, doc = listing
    exits = by_name["exits"]
    assert exits["error_stage"] == "import"
    assert "SystemExit: 1" in exits["error"]
    assert rc == 0 and doc["selected"] is not None  # the process lived on to report


def test_the_others_stay_available_and_selection_works(listing):
    rc, by_name, doc = listing
    assert rc == 0
    assert by_name["reference"]["available"] and by_name["xeon"]["available"]
    assert by_name["hangs"]["available"] and by_name["dies"]["available"]
    assert doc["selected"] == "xeon" or by_name[doc["selected"]]["kind"] == "accelerator"
    assert doc["ops"], "kernel resolution ran for the selected backend"


@pytest.mark.parametrize(
    "name, text",
    [
        ("broken", "RuntimeError: simulated vendor import failure"),
        ("exits", "SystemExit: 1"),
    ],
)
def test_selecting_a_broken_backend_fails_with_its_traceback(site, name, text):
    rc, doc, _ = backends_json(site, "--device", name)
    assert rc == 2 and doc["selected"] is None
    assert doc["selection_error"].startswith(f"--device {name}: the backend failed at import:")
    assert "Traceback" in doc["selection_error"] and text in doc["selection_error"]


COMM_SCRIPT = """
import json, sys
from sglang.conformance.collectives import load_one, run_collectives
out = {}
for name in sys.argv[1:]:
    results = run_collectives(load_one(name), timeout_s=4)
    out[name] = {k: [r.status, r.reason] for k, r in results.items()}
print(json.dumps(out))
"""


def test_hung_or_dying_ranks_fail_their_checks_without_hanging(site):
    proc = subprocess.run(
        [sys.executable, "-c", COMM_SCRIPT, "hangs", "dies"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env_with(site),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])

    hangs = out["hangs"]
    status, reason = hangs["comm.all_reduce[f32-sum-5x7]"]
    assert status == "failed" and "rank 1 did not finish within 4 s" in reason
    assert hangs["comm.broadcast[f32-src0-7x3]"] == [
        "skipped",
        "missing capability: collective:broadcast",
    ]

    dies = out["dies"]
    assert dies["comm.all_reduce[bf16-max-3x11]"][0] == "passed"
    status, reason = dies["comm.all_gather[f32-dim0-3x5]"]
    assert status == "failed" and "rank 1 exited with code 3" in reason
