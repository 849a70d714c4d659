"""The kernel registry: resolution order, and every rejected candidate with its reason."""

from __future__ import annotations

import pytest
from sglang.backend.registry import KernelRegistry
from sglang.backend.types import Capabilities

OP = "norm.rms"
CAPS = Capabilities(dtypes=frozenset({"float32", "bfloat16"}))


def kernel(tag: str):
    def fn(**kwargs):
        return tag

    fn.__name__ = tag
    return fn


@pytest.fixture
def registry() -> KernelRegistry:
    reg = KernelRegistry()
    ref = reg.registrar("reference")
    ref.register(OP, kernel("ref"), name="reference.norm.rms", priority=-1000)
    return reg


def add_vendor_kernels(reg: KernelRegistry) -> None:
    vendor = reg.registrar("vendor")
    vendor.register(
        OP,
        kernel("lib"),
        name="vendor.lib",
        priority=30,
        available=lambda: "libvendor.so not found",
    )
    vendor.register(OP, kernel("fp8"), name="vendor.fp8", priority=20, requires=("fp8:e4m3fn",))
    vendor.register(
        OP,
        kernel("small"),
        name="vendor.small",
        priority=10,
        unsupported=lambda c: f"dim {c['dim']} > 1024" if c["dim"] > 1024 else None,
    )
    vendor.register(OP, kernel("generic"), name="vendor.generic", priority=0)
    reg.registrar("other").register(OP, kernel("other"), name="other.fast", priority=99)


def reasons(resolution) -> dict[str, str]:
    return {r.kernel: r.reason for r in resolution.rejected}


def test_highest_priority_usable_kernel_wins_and_every_reject_says_why(registry):
    add_vendor_kernels(registry)
    res = registry.resolve(OP, "vendor", CAPS, {"dim": 4096})
    assert res.chosen.name == "vendor.generic"
    why = reasons(res)
    assert why["vendor.lib"] == "unavailable: libvendor.so not found"
    assert why["vendor.fp8"] == "missing capabilities: fp8:e4m3fn"
    assert why["vendor.small"] == "unsupported configuration: dim 4096 > 1024"
    assert why["other.fast"] == "belongs to backend 'other', not the selected 'vendor'"
    assert why["reference.norm.rms"] == "lower priority than 'vendor.generic'"
    assert [r.kernel for r in res.rejected][:3] == ["vendor.lib", "vendor.fp8", "vendor.small"]


def test_a_capability_or_config_change_moves_the_choice(registry):
    add_vendor_kernels(registry)
    assert registry.resolve(OP, "vendor", CAPS, {"dim": 512}).chosen.name == "vendor.small"
    fp8 = Capabilities(dtypes=CAPS.dtypes, fp8_formats=frozenset({"e4m3fn"}))
    assert registry.resolve(OP, "vendor", fp8, {"dim": 4096}).chosen.name == "vendor.fp8"


def test_reference_is_the_last_fallback(registry):
    vendor = registry.registrar("vendor")
    vendor.register(OP, kernel("lib"), name="vendor.lib", available=lambda: "driver too old")
    res = registry.resolve(OP, "vendor", CAPS, {"dim": 64})
    assert res.chosen.name == "reference.norm.rms"
    assert reasons(res) == {"vendor.lib": "unavailable: driver too old"}
    assert registry.resolve(OP, "nobody", CAPS).chosen.name == "reference.norm.rms"


def test_backend_kernel_never_falls_back_to_the_reference(registry):
    chosen, rejected = registry.backend_kernel(OP, "vendor", CAPS, {})
    assert chosen is None and rejected == []


def test_duplicate_kernel_name_is_refused(registry):
    vendor = registry.registrar("vendor")
    vendor.register(OP, kernel("a"), name="vendor.rms")
    with pytest.raises(ValueError, match="'vendor.rms' for norm.rms is registered twice"):
        vendor.register(OP, kernel("b"), name="vendor.rms")


def test_unknown_op_is_refused(registry):
    with pytest.raises(KeyError, match="unknown op 'norm.nope'"):
        registry.registrar("vendor").register("norm.nope", kernel("x"))


def test_remove_backend_drops_only_its_kernels(registry):
    add_vendor_kernels(registry)
    registry.remove_backend("vendor")
    assert {k.backend for k in registry.kernels(OP)} == {"reference", "other"}


def test_resolution_serialises(registry):
    add_vendor_kernels(registry)
    doc = registry.resolve(OP, "vendor", CAPS, {"dim": 4096}).to_json()
    assert doc["chosen"] == {"kernel": "vendor.generic", "backend": "vendor"}
    assert {
        "kernel": "vendor.lib",
        "backend": "vendor",
        "reason": "unavailable: libvendor.so not found",
    } in doc["rejected"]
