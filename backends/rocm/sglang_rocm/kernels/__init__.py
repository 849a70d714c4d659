"""The rocm kernels, one module per op family (mirroring sglang.ops), each with register().

None are registered yet: the Triton (HIP) and aiter kernels come in later issues. Until then
every op resolves to the core's reference kernel: plain torch, run on the HIP tensors (torch
device "cuda") as they are.
"""

from __future__ import annotations

KERNEL_MODULES: tuple[str, ...] = ()
