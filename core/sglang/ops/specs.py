"""The catalogue of op specs. Spec modules are listed here explicitly (no discovery by file
name) and imported on first use; each calls `register_spec` for the specs it defines."""

from __future__ import annotations

import importlib

from sglang.ops.spec import OpSpec

SPEC_MODULES = (
    "sglang.ops.norm",
    "sglang.ops.activation",
    "sglang.ops.rope",
    "sglang.ops.kv",
    "sglang.ops.attention",
    "sglang.ops.mla",
    "sglang.ops.moe",
    "sglang.ops.gemm",
    "sglang.ops.gemm_dense_rms",
    "sglang.ops.gemm_fp8",
    "sglang.ops.gemm_int4",
    "sglang.ops.gemm_int4_rms",
    "sglang.ops.gemm_w8a16",
    "sglang.ops.gemm_w4a8",
    "sglang.ops.gemm_fp4",
    "sglang.ops.sampling",
    "sglang.ops.grammar",
)

_SPECS: dict[str, OpSpec] = {}
_loaded = False


def register_spec(spec: OpSpec) -> OpSpec:
    if spec.name in _SPECS and _SPECS[spec.name] is not spec:
        raise ValueError(f"op spec {spec.name!r} is defined twice")
    _SPECS[spec.name] = spec
    return spec


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in SPEC_MODULES:
            importlib.import_module(module)


def all_specs() -> list[OpSpec]:
    _load()
    return [_SPECS[name] for name in sorted(_SPECS)]


def get_spec(name: str) -> OpSpec:
    _load()
    try:
        return _SPECS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known ops: {', '.join(sorted(_SPECS))}") from None
