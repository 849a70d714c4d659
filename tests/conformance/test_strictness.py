"""The suite cannot be fooled: systematic errors fail in every dtype, every kernel of a backend
is checked, manifests are read as users write them and cannot name nothing, kernels may not
write into their inputs or change the output dtype, and the model-level checks catch a kernel
that reuses its output buffer (which op cases cannot see)."""

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
from sglang.backend.discovery import Discovery, discover, load_backend
from sglang.backend.registry import KernelRegistry
from sglang.backend.types import match_case_id
from sglang.conformance.case_ids import known_case_ids
from sglang.conformance.model import run_model_cases
from sglang.conformance.runner import FAILED, PASSED, SKIPPED, Target, run_case
from sglang.ops import all_specs, get_spec
from sglang.ops.gemm import dense
from sglang.ops.norm import rms_norm
from sglang.ops.rope import rope

ALL_DTYPES = ("float32", "bfloat16", "float16")
NO_MANIFEST = ConformanceManifest()


def make_backend(kernels, manifest=NO_MANIFEST, dtypes=ALL_DTYPES, registry=None):
    """A backend "t" registering `kernels`: (op, fn, name, priority) tuples."""

    class Plugin:
        @hookimpl
        def sglang_backend_info(self):
            return BackendInfo(name="t", version="0", device_type="cpu", kind=KIND_CPU)

        @hookimpl
        def sglang_backend_probe(self):
            return ProbeResult.ok()

        @hookimpl
        def sglang_backend_capabilities(self):
            return Capabilities(dtypes=frozenset(dtypes), page_sizes=(1, 16))

        @hookimpl
        def sglang_backend_register_kernels(self, registry):
            for op, fn, name, priority in kernels:
                registry.register(op, fn, name=name, priority=priority)

        @hookimpl
        def sglang_backend_create_runtime(self, device_index):
            return CpuRuntime(device_index)

        @hookimpl
        def sglang_backend_create_communicator(self, rank, world_size, init_method, device_index):
            return ProcessGroupCommunicator("gloo", rank, world_size, init_method)

        @hookimpl
        def sglang_backend_conformance_manifest(self):
            return manifest

    registry = registry if registry is not None else KernelRegistry()
    backend = load_backend("t", lambda: Plugin, "test:Plugin", None, None, registry)
    assert backend.available, backend.error
    return backend, registry


def target(kernels, **kw) -> Target:
    backend, registry = make_backend(kernels, **kw)
    return Target(backend, registry, backend.create_runtime(device_index=0))


def scaled_rms(x, weight, eps=1e-6, residual=None):
    out = rms_norm(x, weight, eps, residual)
    return (out[0] * 1.01, out[1]) if residual is not None else out * 1.01


def statuses(t: Target, op: str, kernel=None) -> dict[str, set[str]]:
    """dtype -> the statuses of every case of `op` in that dtype."""
    spec, out = get_spec(op), {}
    for case in spec.cases():
        r = run_case(t, spec, case, kernel)
        out.setdefault(r.dtype, set()).add(r.status)
    return out


def test_a_one_percent_scale_error_fails_in_every_dtype():
    got = statuses(target([("norm.rms", scaled_rms, "t.rms", 0)]), "norm.rms")
    assert set(got) == set(ALL_DTYPES)
    for dtype, seen in got.items():
        assert FAILED in seen, dtype


def test_every_float_spec_bounds_its_relative_rms_below_one_percent():
    for spec in all_specs():
        for dtype, tol in spec.tolerances.items():
            if spec.metric == "exact":
                continue
            assert 0 < tol.rel_rms < 0.008, (spec.name, dtype, tol)


def test_a_bfloat16_only_backend_cannot_pass_a_scaled_norm():
    t = target([("norm.rms", scaled_rms, "t.rms", 0)], dtypes=("bfloat16",))
    got = statuses(t, "norm.rms")
    assert got["bfloat16"] >= {FAILED}
    assert got["float32"] == {SKIPPED}


def test_every_kernel_is_checked_not_only_the_first():
    def broken_fallback(x, weight, eps=1e-6, residual=None):
        return scaled_rms(x, weight, eps, residual)

    t = target([("norm.rms", rms_norm, "t.good", 1), ("norm.rms", broken_fallback, "t.bad", 0)])
    spec = get_spec("norm.rms")
    case = next(c for c in spec.cases() if c.name == "bf16-T7-D576")
    assert run_case(t, spec, case).kernel == "t.good"  # the winner
    assert run_case(t, spec, case, "t.good").status == PASSED
    bad = run_case(t, spec, case, "t.bad")
    assert bad.status == FAILED and bad.kernel == "t.bad"
    assert "relative RMS error" in bad.reason and "out ~ 1.0" in bad.reason


def test_writing_into_an_input_fails():
    def in_place(x, weight, eps=1e-6, residual=None):
        out = rms_norm(x, weight, eps, residual)
        x.zero_()
        return out

    spec = get_spec("norm.rms")
    case = next(c for c in spec.cases() if c.name == "f32-T7-D576")
    r = run_case(target([("norm.rms", in_place, "t.rms", 0)]), spec, case)
    assert r.status == FAILED and "wrote into its input 'x'" in r.reason


def test_a_wrong_output_dtype_fails():
    def upcast(x, weight, bias=None):
        return dense(x, weight, bias).float()

    spec = get_spec("gemm.dense")
    case = next(c for c in spec.cases() if c.dtype == torch.bfloat16 and c.params["m"] > 0)
    r = run_case(target([("gemm.dense", upcast, "t.mm", 0)]), spec, case)
    assert r.status == FAILED and "dtype torch.float32" in r.reason


def test_override_patterns_take_brackets_literally():
    assert match_case_id("gemm.dense[f32-*]", "gemm.dense[f32-M1-K128-N96-bias]")
    assert not match_case_id("gemm.dense[f32-*]", "gemm.dense[bf16-M1-K128-N96-bias]")
    assert match_case_id("norm.rms[*-T7-*]", "norm.rms[bf16-T7-D576-residual]")
    assert match_case_id("norm.rms[?16-*]", "norm.rms[f16-T1-D128]")


def test_an_override_applies_with_its_reason_and_only_to_its_kernel():
    manifest = ConformanceManifest(
        tolerance_overrides=(
            ToleranceOverride("norm.rms[bf16-*]", "coarse unit", rel_rms=0.02, kernel="t.bad"),
        )
    )
    t = target(
        [("norm.rms", rms_norm, "t.good", 1), ("norm.rms", scaled_rms, "t.bad", 0)],
        manifest=manifest,
    )
    spec = get_spec("norm.rms")
    case = next(c for c in spec.cases() if c.name == "bf16-T7-D576")
    loose = run_case(t, spec, case, "t.bad")
    assert loose.status == PASSED and loose.tolerance_reason == "coarse unit"
    assert loose.tolerance["rel_rms"] == 0.02
    strict = run_case(t, spec, case, "t.good")
    assert strict.tolerance_reason is None and strict.tolerance["rel_rms"] < 0.008


def test_manifest_entries_that_match_no_case_are_reported():
    ids = known_case_ids()
    manifest = ConformanceManifest(
        expected_failures=(ExpectedFailure("norm.rms[bf16-T7-*]", "ok"),),
        tolerance_overrides=(
            ToleranceOverride("gemm.dense[f32-*]", "ok", atol=1e-5),
            ToleranceOverride("gemm.dense[fp32-*]", "typo", atol=1e-5),
            ToleranceOverride("norm.rms[*]", "no such kernel", atol=1e-5, kernel="t.nope"),
        ),
    )
    stale = manifest.unmatched(ids, ["t.rms"])
    assert [e.reason for e in stale] == ["typo", "no such kernel"]
    assert any(i.startswith("model.llama[") for i in ids)
    assert any(i.startswith("comm.all_reduce[") for i in ids)


def test_the_model_level_check_catches_a_kernel_that_assumes_contiguous_inputs():
    """A rope kernel that reads q and k as if they were contiguous passes every op case (their
    inputs are contiguous), but the model hands it q and k as views into one qkv projection."""

    def contiguous_only(positions, q, k, **kw):
        def assume(t):
            return t.as_strided(t.shape, torch.empty(t.shape).stride(), t.storage_offset())

        return rope(positions=positions, q=assume(q), k=assume(k), **kw)

    kernels = [("rope", contiguous_only, "t.rope", 0)]
    spec = get_spec("rope")
    t = target(kernels, dtypes=("float32",))
    ran = {run_case(t, spec, c).status for c in spec.cases() if c.dtype == torch.float32}
    assert ran == {PASSED}
    found = discover()
    backend, _ = make_backend(kernels, dtypes=("float32",), registry=found.registry)
    try:
        results = run_model_cases(
            Discovery({**found.backends, "t": backend}, found.registry),
            backend,
            "llama",
            torch.float32,
        )
    finally:
        found.registry.remove_backend("t")
    assert {r.status for r in results.values()} == {FAILED}, [r.reason for r in results.values()]


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_model_level_checks_pass_on_the_reference_in_float32(arch):
    found = discover()
    results = run_model_cases(found, found.backends["reference"], arch, torch.float32)
    for r in results.values():
        assert r.status == PASSED, r.reason
        assert "greedy agreement" in r.reason
