"""The cuda kernels, one module per op family (mirroring sglang.ops), each with register().

None are registered yet: the Triton kernels come in later issues. Until then every op resolves
to the core's reference kernel: plain torch, run on the CUDA tensors as they are (checked on
an H200 for most ops; references that build CPU tensors inside fail there and need fixing).
"""

from __future__ import annotations

import importlib

KERNEL_MODULES: tuple[str, ...] = (
    "sglang_cuda.kernels.attention",
)


def register_all(registry) -> None:
    for name in KERNEL_MODULES:
        importlib.import_module(name).register(registry)
