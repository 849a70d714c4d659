"""ACME's kernels, one module per op family, named as the core's spec modules are."""

from __future__ import annotations

import importlib

KERNEL_MODULES = (
    "sglang_acme.kernels.norm",
    "sglang_acme.kernels.activation",
    "sglang_acme.kernels.gemm",
    "sglang_acme.kernels.kv",
    "sglang_acme.kernels.attention",
)


def register_all(registry) -> None:
    for name in KERNEL_MODULES:
        importlib.import_module(name).register(registry)
