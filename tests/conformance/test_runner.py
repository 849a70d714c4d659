"""The conformance runner tells a correct kernel from a wrong one, honours the manifest strictly,
and skips only for stated reasons. Uses a small in-test backend loaded through the same path
as installed plugins (sglang.backend.discovery.load_backend)."""

from __future__ import annotations

import pytest
import torch
from sglang.backend import (
    KIND_CPU,
    BackendInfo,
    Capabilities,
    ConformanceManifest,
    CpuRuntime,
    ExpectedFailure,
    ProbeResult,
    ProcessGroupCommunicator,
    ToleranceOverride,
    hookimpl,
)
from sglang.backend.discovery import load_backend
from sglang.backend.registry import KernelRegistry
from sglang.conformance.runner import FAILED, PASSED, SKIPPED, XFAILED, Target, run_case
from sglang.ops import get_spec
from sglang.ops.norm import rms_norm


def make_target(kernel, manifest=ConformanceManifest(), dtypes=("float32", "bfloat16")):
    class Plugin:
        @hookimpl
        def sglang_backend_info(self):
            return BackendInfo(name="t", version="0", device_type="cpu", kind=KIND_CPU)

        @hookimpl
        def sglang_backend_probe(self):
            return ProbeResult.ok()

        @hookimpl
        def sglang_backend_capabilities(self):
            return Capabilities(dtypes=frozenset(dtypes))

        @hookimpl
        def sglang_backend_register_kernels(self, registry):
            if kernel is not None:
                registry.register("norm.rms", kernel, name="t.rms")

        @hookimpl
        def sglang_backend_create_runtime(self, device_index):
            return CpuRuntime(device_index)

        @hookimpl
        def sglang_backend_create_communicator(self, rank, world_size, init_method, device_index):
            return ProcessGroupCommunicator("gloo", rank, world_size, init_method)

        @hookimpl
        def sglang_backend_conformance_manifest(self):
            return manifest

    registry = KernelRegistry()
    backend = load_backend("t", lambda: Plugin, "test:Plugin", None, None, registry)
    assert backend.available, backend.error
    return Target(backend, registry, backend.create_runtime(device_index=0))


def case(name):
    spec = get_spec("norm.rms")
    return spec, next(c for c in spec.cases() if c.name == name)


def off_by_a_little(x, weight, eps=1e-6, residual=None):
    out = rms_norm(x, weight, eps, residual)
    if residual is None:
        return out + 1e-2
    return out[0] + 1e-2, out[1]


def test_correct_kernel_passes_and_records_error_and_tolerance():
    spec, c = case("f32-T7-D576-residual")
    r = run_case(make_target(rms_norm), spec, c)
    assert r.status == PASSED, r.reason
    assert r.kernel == "t.rms"
    assert 0 <= r.error < 1e-5
    assert r.tolerance["atol"] == spec.tolerance(torch.float32).atol


def test_wrong_kernel_fails_with_detail():
    spec, c = case("f32-T7-D576")
    r = run_case(make_target(off_by_a_little), spec, c)
    assert r.status == FAILED
    assert "outside atol" in r.reason


def test_raising_kernel_fails_with_traceback():
    def broken(**kwargs):
        raise RuntimeError("kernel exploded")

    spec, c = case("f32-T7-D576")
    r = run_case(make_target(broken), spec, c)
    assert r.status == FAILED and "kernel exploded" in r.reason


def test_nan_output_fails_as_non_finite():
    def nan_kernel(x, weight, eps=1e-6, residual=None):
        out = rms_norm(x, weight, eps)
        out[0, 0] = float("nan")
        return out

    spec, c = case("f32-T7-D576")
    r = run_case(make_target(nan_kernel), spec, c)
    assert r.status == FAILED and "non-finite" in r.reason


def test_wrong_shape_fails():
    spec, c = case("f32-T7-D576")
    r = run_case(make_target(lambda x, weight, eps=1e-6: x[:, :-1]), spec, c)
    assert r.status == FAILED and "shape" in r.reason


def test_expected_failure_is_strict():
    spec, c = case("f32-T7-D576")
    manifest = ConformanceManifest(
        expected_failures=(ExpectedFailure("norm.rms[f32-T7-*", "known"),)
    )
    bad = run_case(make_target(off_by_a_little, manifest), spec, c)
    assert bad.status == XFAILED and bad.reason.startswith("known")
    good = run_case(make_target(rms_norm, manifest), spec, c)
    assert good.status == FAILED and "expected failure" in good.reason


def test_tolerance_override_applies_with_reason():
    spec, c = case("f32-T7-D576")
    manifest = ConformanceManifest(
        tolerance_overrides=(
            ToleranceOverride("norm.rms[f32-*]", "coarse hardware", atol=0.02, rel_rms=0.05),
        )
    )
    r = run_case(make_target(off_by_a_little, manifest), spec, c)
    assert r.status == PASSED
    assert r.tolerance["atol"] == 0.02 and r.tolerance_reason == "coarse hardware"
    assert r.tolerance["rel_rms"] == 0.05


def test_manifest_entries_need_reasons():
    with pytest.raises(ValueError):
        ConformanceManifest(expected_failures=(ExpectedFailure("*", " "),))


def test_missing_capability_skips_with_reason():
    spec, c = case("f16-T7-D576")
    r = run_case(make_target(rms_norm), spec, c)
    assert r.status == SKIPPED and r.reason == "missing capability: dtype:float16"


def test_no_kernel_is_unsupported_not_failed():
    spec, c = case("f32-T7-D576")
    r = run_case(make_target(None), spec, c)
    assert r.status == SKIPPED and r.reason.startswith("unsupported")


def test_case_ids_are_stable_and_unique():
    from sglang.ops import all_specs

    ids = [c.id for s in all_specs() for c in s.cases()]
    assert len(ids) == len(set(ids))
    assert ids == [c.id for s in all_specs() for c in s.cases()]
