"""Selection: `--device auto` and `--device NAME`, $SGLANG_DEVICE, and clear failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
from sglang.backend.discovery import Discovery, discover
from sglang.backend.selection import (
    DEVICE_ENV,
    BackendSelectionError,
    choose_backend,
    select_platform,
)


@pytest.fixture(scope="module")
def found() -> Discovery:
    return discover()


@pytest.fixture(autouse=True)
def no_device_env(monkeypatch):
    """Start without $SGLANG_DEVICE and restore it afterwards (select_platform sets it)."""
    monkeypatch.setenv(DEVICE_ENV, "auto")
    monkeypatch.delenv(DEVICE_ENV)


def best_available(found: Discovery) -> str:
    for kind in ("accelerator", "cpu", "fallback"):
        ready = [b for b in found.backends.values() if b.available and b.info.kind == kind]
        if ready:
            return max(ready, key=lambda b: (b.info.auto_priority, b.name)).name
    raise AssertionError("nothing available")


def test_auto_picks_the_best_available_backend(found):
    backend, reason = choose_backend(found, "auto")
    assert backend.name == best_available(found)
    assert reason.startswith("auto: best available")
    if not any(b.available and b.info.kind == "accelerator" for b in found.backends.values()):
        assert backend.name == "xeon", "on a machine without accelerators xeon wins"


def test_auto_prefers_xeon_over_the_emulated_vendor(found):
    if "acme" not in found.backends:
        pytest.skip("the example vendor package is not installed")
    assert found.backends["acme"].info.auto_priority < found.backends["xeon"].info.auto_priority
    without_xeon = replace(found, backends={n: b for n, b in found.backends.items() if n != "xeon"})
    if best_available(without_xeon) == "acme":
        assert choose_backend(without_xeon)[0].name == "acme"


def test_named_backend(found):
    backend, reason = choose_backend(found, "reference")
    assert backend.name == "reference"
    assert reason == "requested with --device reference"


def test_unavailable_backend_fails_with_its_probe_reason(found):
    cuda = found.backends["cuda"]
    if cuda.available:
        pytest.skip("cuda is available on this machine")
    with pytest.raises(BackendSelectionError) as err:
        choose_backend(found, "cuda")
    message = str(err.value)
    assert message.startswith("--device cuda: unavailable: ")
    assert cuda.why_unavailable() in message
    if cuda.probe.details.get("cuda") is None:
        assert "torch.version.cuda is None" in message


def test_unknown_backend_fails_clearly(found):
    with pytest.raises(BackendSelectionError) as err:
        choose_backend(found, "nosuchchip")
    message = str(err.value)
    assert "--device nosuchchip: no such backend installed" in message
    assert "reference" in message and "xeon" in message


def test_environment_variable_is_honoured(found, monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "reference")
    assert choose_backend(found)[0].name == "reference"
    assert choose_backend(found, "xeon")[0].name == "xeon", "an explicit request wins"
    monkeypatch.setenv(DEVICE_ENV, "nosuchchip")
    with pytest.raises(BackendSelectionError, match="nosuchchip"):
        choose_backend(found)


def test_select_platform_passes_the_choice_to_children(found, monkeypatch):
    platform = select_platform("reference", found)
    assert platform.name == "reference"
    assert os.environ[DEVICE_ENV] == "reference"
    assert platform.kernel("norm.rms") is platform.resolve("norm.rms").chosen.fn
    assert platform.resolve("norm.rms").chosen.backend == "reference"


def test_platform_uses_the_backends_kernel(found):
    platform = select_platform("xeon", found)
    assert platform.resolve("norm.rms").chosen.backend == "xeon"
    assert platform.runtime.device.type == "cpu"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sglang.cli.main", "backends", "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_reports_a_failed_selection():
    proc = run_cli("--device", "cuda")
    doc = json.loads(proc.stdout)
    cuda = next(b for b in doc["backends"] if b["name"] == "cuda")
    if cuda["available"]:
        pytest.skip("cuda is available on this machine")
    assert proc.returncode == 2
    assert doc["selected"] is None
    assert doc["selection_error"].startswith("--device cuda: unavailable: ")
    assert all(reason in doc["selection_error"] for reason in cuda["reasons"])
