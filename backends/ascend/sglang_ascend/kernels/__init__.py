"""The ascend kernels, one module per op family (mirroring sglang.ops), each with register().

None are registered yet: the torch-npu kernels come in later issues. Until then every op
resolves to the core's reference kernel: plain torch, run on the NPU tensors as they are.
"""

from __future__ import annotations

KERNEL_MODULES: tuple[str, ...] = ()
