"""The plugin helpers every backend uses (sglang.backend.plugin_kit)."""

from __future__ import annotations

import sys
import types

import pytest
from sglang.backend.plugin_kit import (
    counted_devices_probe,
    installed_version,
    register_kernel_modules,
)
from sglang.backend.registry import KernelRegistry


def test_register_kernel_modules_calls_each_register_with_the_context(monkeypatch):
    calls = []
    for name in ("kit_test_a", "kit_test_b"):
        mod = types.ModuleType(name)
        mod.register = lambda registry, _n=name, **ctx: calls.append((_n, registry, ctx))
        monkeypatch.setitem(sys.modules, name, mod)
    registry = KernelRegistry().registrar("x")
    register_kernel_modules(registry, ("kit_test_a", "kit_test_b"), launch={"w": 64})
    assert calls == [
        ("kit_test_a", registry, {"launch": {"w": 64}}),
        ("kit_test_b", registry, {"launch": {"w": 64}}),
    ]


def test_register_kernel_modules_names_a_missing_module():
    with pytest.raises(ModuleNotFoundError, match="no_such_kernel_module"):
        register_kernel_modules(KernelRegistry().registrar("x"), ("no_such_kernel_module",))


def test_installed_version():
    assert installed_version("pluggy") is not None
    assert installed_version("no-such-distribution-here") is None
    assert installed_version("no-such-distribution-here", module="json") == "unknown version"
    assert installed_version("pluggy", module="no_such_module_here") is None


def test_counted_devices_probe(monkeypatch):
    asked = []
    r = counted_devices_probe(["no driver"], {}, lambda: asked.append(1) or 1, "chip", "CHIP_VIS")
    assert not r.available and r.reasons == ("no driver",) and not asked
    monkeypatch.setenv("CHIP_VIS", "3")
    r = counted_devices_probe([], {}, lambda: 0, "chip", "CHIP_VIS")
    assert not r.available and "CHIP_VIS=3" in r.reasons[0] and r.details["device_count"] == 0
    r = counted_devices_probe([], {"v": 1}, lambda: 2, "chip", "CHIP_VIS", ["lib 1.0"])
    assert r.available and r.reasons == ("2 chip(s), lib 1.0",) and r.details["device_count"] == 2


def test_decode_from_extend_is_decode():
    import torch
    from sglang.backend.plugin_kit import decode_from_extend
    from sglang.ops import attention as ref

    decode = decode_from_extend(ref.extend)
    for case in ref.DECODE.cases()[:6]:
        args = ref.DECODE.make_inputs(case, torch.Generator().manual_seed(case.seed))
        assert torch.equal(decode(**args), ref.decode(**args)), case.id
