"""The rocm kernels: the shared GPU kernels of sglang_triton (the same source the cuda backend
registers), launched with this architecture's tables (tables.py), and AMD's aiter library
above them for the ops it does best where it imports (kernels/aiter_ops.py: RMS norm, fused
MoE, FP8 block GEMM); the Triton kernel serves whenever aiter is missing or declines.
"""

from __future__ import annotations

import sglang_triton
from sglang.backend.plugin_kit import register_kernel_modules

from sglang_rocm.arch import Chip
from sglang_rocm.tables import rocm_target

KERNEL_MODULES: tuple[str, ...] = ("sglang_rocm.kernels.aiter_ops",)


def register(registry, chip: Chip) -> None:
    register_kernel_modules(registry, sglang_triton.KERNEL_MODULES, target=rocm_target(chip))
    register_kernel_modules(registry, KERNEL_MODULES)
