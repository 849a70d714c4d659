"""Discovery: what is installed, what is available here and why not, and the contract checks
that refuse a broken plugin at registration."""

from __future__ import annotations

import glob
import importlib.metadata as md
import json
import os
import subprocess
import sys

import pytest
import torch
from sglang.backend import (
    API_VERSION,
    KIND_CPU,
    BackendInfo,
    Capabilities,
    CpuRuntime,
    ProbeResult,
    ProcessGroupCommunicator,
    hookimpl,
)
from sglang.backend.discovery import Discovery, discover, load_backend
from sglang.backend.registry import KernelRegistry

EXPECTED = {"reference", "xeon", "cuda", "rocm", "ascend", "tpu", "acme"}
VENDOR_MODULES = ("triton", "torch_npu", "torch_xla", "jax", "intel_extension_for_pytorch", "aiter")


@pytest.fixture(scope="module")
def found() -> Discovery:
    return discover()


def installed(dist: str) -> bool:
    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


def test_every_first_party_backend_and_the_example_are_discovered(found, example_backend):
    expected = EXPECTED if example_backend else EXPECTED - {"acme"}
    assert expected <= set(found.backends)
    for name in expected:
        assert found.backends[name].error is None, found.backends[name].error


def test_cpu_backends_are_available(found, example_backend):
    for name in ("reference", "xeon", "acme") if example_backend else ("reference", "xeon"):
        b = found.backends[name]
        assert b.available, b.why_unavailable()
        assert b.capabilities is not None and b.kernel_count > 0


def reasons(found: Discovery, name: str) -> str:
    return "; ".join(found.backends[name].probe.reasons)


def test_cuda_reason_is_true(found):
    b, why = found.backends["cuda"], reasons(found, "cuda")
    has_driver = bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/proc/driver/nvidia")
    if torch.version.cuda is None:
        assert not b.available
        assert f"torch {torch.__version__} is a" in why
        assert ("torch.version.cuda is None" in why) or ("ROCm build" in why)
    if not has_driver:
        assert not b.available and "no NVIDIA device" in why
    if torch.version.cuda is not None and has_driver and torch.cuda.device_count() > 0:
        assert b.available, why


def test_rocm_reason_is_true(found):
    why = reasons(found, "rocm")
    if getattr(torch.version, "hip", None) is None:
        assert not found.backends["rocm"].available
        assert f"torch {torch.__version__} is not a ROCm build (torch.version.hip is None)" in why
    if not os.path.exists("/dev/kfd"):
        assert "no AMD GPU" in why


def test_ascend_reason_is_true(found):
    why = reasons(found, "ascend")
    if not installed("torch-npu"):
        assert "torch-npu is not installed" in why
    if not glob.glob("/dev/davinci[0-9]*"):
        assert not found.backends["ascend"].available
        assert "no Ascend NPU" in why


def test_tpu_reason_is_true(found):
    why = reasons(found, "tpu")
    if not installed("torch-xla") and not installed("jax"):
        assert "neither torch-xla nor jax is installed" in why
    if not glob.glob("/dev/accel[0-9]*") and not os.path.isdir("/dev/vfio"):
        assert not found.backends["tpu"].available
        assert "no TPU device" in why


def test_unavailable_backends_register_no_kernels_and_report_no_capabilities(found):
    for b in found.backends.values():
        if not b.available:
            assert b.capabilities is None and b.kernel_count == 0
            assert found.registry.kernels(backend=b.name) == []


def test_probes_import_no_vendor_library():
    code = (
        "import sys, json; from sglang.backend.discovery import discover; discover(); "
        f"print(json.dumps([m for m in {VENDOR_MODULES!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_cli_json_lists_everything():
    proc = subprocess.run(
        [sys.executable, "-m", "sglang.cli.main", "backends", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    by_name = {b["name"]: b for b in doc["backends"]}
    assert EXPECTED <= set(by_name)
    assert doc["selected"] in by_name and by_name[doc["selected"]]["selected"]
    for b in by_name.values():
        if b["available"]:
            assert b["capabilities"] is not None
        else:
            assert b["reasons"] or b["error"], f"{b['name']} is unavailable without a reason"
    assert by_name["cuda"]["device_type"] == "cuda" and by_name["cuda"]["kind"] == "accelerator"
    ops = {op["op"]: op for op in doc["ops"]}
    assert "norm.rms" in ops and ops["norm.rms"]["chosen"]["kernel"]


# --- the contract, enforced at registration --------------------------------------------------
class GoodPlugin:
    """A complete, minimal backend; the tests below break it one way at a time."""

    name = "fake"
    api_version = API_VERSION

    @hookimpl
    def sglang_backend_info(self):
        return BackendInfo(self.name, "0", "cpu", api_version=self.api_version, kind=KIND_CPU)

    @hookimpl
    def sglang_backend_probe(self):
        return ProbeResult.ok()

    @hookimpl
    def sglang_backend_capabilities(self):
        return Capabilities()

    @hookimpl
    def sglang_backend_register_kernels(self, registry):
        pass

    @hookimpl
    def sglang_backend_create_runtime(self, device_index):
        return CpuRuntime(device_index)

    @hookimpl
    def sglang_backend_create_communicator(self, rank, world_size, init_method, device_index):
        return ProcessGroupCommunicator("gloo", rank, world_size, init_method)


def load(plugin):
    return load_backend("fake", lambda: plugin, "tests:fake", None, None, KernelRegistry())


def test_a_complete_plugin_loads():
    b = load(GoodPlugin())
    assert b.available and b.error is None
    assert b.server_defaults(1 << 30) is not None  # optional hook: the core's default
    assert b.conformance_manifest().expected_failures == ()


def test_a_plugin_class_is_instantiated():
    assert load(GoodPlugin).available


def test_missing_required_hook_is_refused_by_name():
    class NoCommunicator(GoodPlugin):
        sglang_backend_create_communicator = None

    b = load(NoCommunicator())
    assert not b.available and b.error_stage == "register"
    assert "lacks required hooks: sglang_backend_create_communicator" in b.error


def test_other_api_version_is_refused():
    class Future(GoodPlugin):
        api_version = API_VERSION + 1

    b = load(Future())
    assert b.error_stage == "info"
    assert f"speaks contract api_version {API_VERSION + 1}" in b.error


def test_misspelt_hook_is_refused():
    class Typo(GoodPlugin):
        @hookimpl
        def sglang_backend_probes(self):
            return ProbeResult.ok()

    b = load(Typo())
    assert b.error_stage == "register" and "sglang_backend_probes" in b.error


def test_name_must_match_the_entry_point():
    class Impostor(GoodPlugin):
        name = "cuda"

    b = load(Impostor())
    assert b.error_stage == "info" and "calls itself 'cuda'" in b.error


def test_a_failing_probe_is_recorded_not_raised():
    class Crashes(GoodPlugin):
        @hookimpl
        def sglang_backend_probe(self):
            raise OSError("driver query failed")

    b = load(Crashes())
    assert b.error_stage == "probe" and "OSError: driver query failed" in b.error
    assert b.why_unavailable() == "failed at probe: OSError: driver query failed"


def test_failing_kernel_registration_leaves_no_kernels():
    class HalfRegisters(GoodPlugin):
        @hookimpl
        def sglang_backend_register_kernels(self, registry):
            registry.register("norm.rms", lambda **kw: None, name="fake.rms")
            raise RuntimeError("second kernel failed to build")

    registry = KernelRegistry()
    b = load_backend("fake", HalfRegisters, "tests:fake", None, None, registry)
    assert b.error_stage == "kernels"
    assert registry.kernels(backend="fake") == []
