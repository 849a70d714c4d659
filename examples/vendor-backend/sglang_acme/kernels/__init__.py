"""ACME's kernels, one module per op family, named as the core's spec modules are."""

from __future__ import annotations

KERNEL_MODULES = (
    "sglang_acme.kernels.norm",
    "sglang_acme.kernels.activation",
    "sglang_acme.kernels.gemm",
    "sglang_acme.kernels.kv",
    "sglang_acme.kernels.attention",
)
