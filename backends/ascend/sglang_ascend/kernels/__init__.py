"""The ascend kernels: torch-npu's fused operators, one module per op family (mirroring
sglang.ops), each with register(). Written against torch-npu's documented signatures; nothing
here can run without an Ascend NPU (torch-npu pins its own torch and needs CANN), so the backend
is `unverified` until an owner's conformance report lands under docs/conformance/
(docs/ascend.md says how). Pure-torch glue (block tables, expert grouping, int4 repacking)
lives in glue.py and is tested on the CPU.

Sampling, the grammar mask and moe.route stay on the reference: their torch code runs on NPU
tensors as it is (no fused torch-npu operator covers the spec's routing modes).
"""

from __future__ import annotations

KERNEL_MODULES: tuple[str, ...] = (
    "sglang_ascend.kernels.norm",
    "sglang_ascend.kernels.activation",
    "sglang_ascend.kernels.rope",
    "sglang_ascend.kernels.kv",
    "sglang_ascend.kernels.attention",
    "sglang_ascend.kernels.moe",
    "sglang_ascend.kernels.gemm",
    "sglang_ascend.kernels.gemm_int4",
)
