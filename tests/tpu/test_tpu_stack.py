"""The tpu backend on its own stack: JAX (CPU wheels) in ./.venv-tpu (ci/install_tpu_stack.sh),
its kernels on JAX's CPU platform with Pallas interpreted (SGLANG_TPU_EMULATE=1). Runs
tests/tpu/jax_checks.py there, in a subprocess: the conformance suite on the tpu backend (0
failures, its native ops) and a tiny Llama whose greedy tokens equal transformers'."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tpu_python() -> Path:
    python = Path(os.environ.get("SGLANG_TPU_PYTHON", REPO / ".venv-tpu" / "bin" / "python"))
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must have .venv-tpu: ci/install.sh runs install_tpu_stack.sh")
        pytest.skip("no .venv-tpu (JAX for the tpu backend): bash ci/install_tpu_stack.sh")
    return python


def test_tpu_backend_on_jax_cpu(tpu_python):
    env = {**os.environ, "SGLANG_TPU_EMULATE": "1", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [
            str(tpu_python),
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            str(Path(__file__).parent / "jax_checks.py"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=1200,
    )
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout.splitlines()[-1]
