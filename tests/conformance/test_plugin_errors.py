"""A backend that cannot be checked gets one line naming the package, the hook and the cause,
and an exit code saying which (sglang.conformance.run), never a pytest traceback. The plugins
are real entry points: a module and a dist-info directory on PYTHONPATH of a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sglang.conformance import run

HOOKS = """
from sglang.backend import (KIND_CPU, BackendInfo, Capabilities, ConformanceManifest, CpuRuntime,
    ProbeResult, ProcessGroupCommunicator, ToleranceOverride, hookimpl)

@hookimpl
def sglang_backend_info():
    return BackendInfo(name="{name}", version="0", device_type="cpu", kind=KIND_CPU)

@hookimpl
def sglang_backend_{probe}():
    {probe_body}

@hookimpl
def sglang_backend_capabilities():
    return Capabilities(dtypes=frozenset({{"float32"}}))

@hookimpl
def sglang_backend_register_kernels(registry):
    pass

@hookimpl
def sglang_backend_create_runtime(device_index):
    return CpuRuntime(device_index)

@hookimpl
def sglang_backend_create_communicator(rank, world_size, init_method, device_index):
    return ProcessGroupCommunicator("gloo", rank, world_size, init_method)

@hookimpl
def sglang_backend_conformance_manifest():
    return ConformanceManifest(tolerance_overrides=({override},))
"""
OK_PROBE = "return ProbeResult.ok()"
GOOD_OVERRIDE = 'ToleranceOverride("norm.rms[f32-*]", "documented", atol=1e-5)'
PLUGINS = {
    "cimport": "import sglang_no_such_module\n",
    "chook": HOOKS.format(
        name="chook", probe="probee", probe_body=OK_PROBE, override=GOOD_OVERRIDE
    ),
    "cprobe": HOOKS.format(
        name="cprobe",
        probe="probe",
        probe_body='raise RuntimeError("driver not found")',
        override=GOOD_OVERRIDE,
    ),
    "cunavail": HOOKS.format(
        name="cunavail",
        probe="probe",
        probe_body='return ProbeResult.unavailable("no ACME card")',
        override=GOOD_OVERRIDE,
    ),
    "cstale": HOOKS.format(
        name="cstale",
        probe="probe",
        probe_body=OK_PROBE,
        override='ToleranceOverride("norm.rms[fp32-*]", "typo", atol=1e-5)',
    ),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plugins")
    for name, source in PLUGINS.items():
        (root / f"sglang_{name}.py").write_text(textwrap.dedent(source))
        info = root / f"sglang_{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: sglang-{name}\nVersion: 0.1\n"
        )
        (info / "entry_points.txt").write_text(f"[sglang.backends]\n{name} = sglang_{name}\n")
    return root


def conformance(site: Path, backend: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "sglang.cli.main", "conformance", "--backend", backend],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.parametrize(
    "backend, code, words",
    [
        ("cimport", run.EXIT_IMPORT, ["sglang-cimport", "import", "sglang_no_such_module"]),
        ("chook", run.EXIT_CONTRACT, ["sglang-chook", "registration", "sglang_backend_probee"]),
        (
            "cprobe",
            run.EXIT_HOOK,
            ["sglang-cprobe", "sglang_backend_probe", "driver not found", "sglang_cprobe.py"],
        ),
        ("cunavail", run.EXIT_UNAVAILABLE, ["cunavail", "no ACME card"]),
        ("cstale", run.EXIT_MANIFEST, ["cstale", "norm.rms[fp32-*]", "match no case"]),
        ("no-such-chip", run.EXIT_NOT_INSTALLED, ["no-such-chip", "not installed"]),
    ],
)
def test_one_line_and_an_exit_code(site, backend, code, words):
    proc = conformance(site, backend)
    assert proc.returncode == code, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("sglang conformance:")]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
