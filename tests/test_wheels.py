"""Every first-party package built as a wheel, as `pip install ./backends/xeon` (not editable)
builds it: each file under its import packages that is not Python (the xeon backend's C++
sources, compiled on the user's machine; conformance's pytest.ini) must be in the wheel, or the
installed package quietly loses what reads it (the xeon native kernels fell back to the torch
kernels: no csrc in the wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["core", "models", *sorted(str(p.parent.relative_to(ROOT))
                                     for p in (ROOT / "backends").glob("*/pyproject.toml"))]  # fmt: skip
SKIP_PARTS = {"__pycache__", "tests"}


def data_files(project: Path) -> set[str]:
    """Non-Python files inside the project's import packages (directories with __init__.py at
    the project root), relative to the project root."""
    found = set()
    for init in project.glob("*/__init__.py"):
        for path in init.parent.rglob("*"):
            rel = path.relative_to(project)
            if (
                path.is_file()
                and path.suffix not in (".py", ".pyc")
                and not (SKIP_PARTS & set(rel.parts))
            ):
                found.add(rel.as_posix())
    return found


def test_wheels_carry_their_data_files(tmp_path):
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode:
        pytest.skip("pip is not available")
    missing = {}
    for package in PACKAGES:
        project = ROOT / package
        # built from a copy: no build/ left in the checkout, and none of an earlier build reused
        copy = tmp_path / "src" / package.replace("/", "_")
        shutil.copytree(project, copy, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__"))  # fmt: skip
        out = tmp_path / "wheels" / package.replace("/", "_")
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
             "-w", str(out), str(copy)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert built.returncode == 0, built.stderr[-2000:]
        (wheel,) = out.glob("*.whl")
        names = set(zipfile.ZipFile(wheel).namelist())
        lost = sorted(f for f in data_files(project) if f not in names)
        if lost:
            missing[package] = lost
    assert not missing, f"files the installed packages would lack: {missing}"
