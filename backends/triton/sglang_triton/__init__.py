"""Kernels shared by the GPU backends: Triton kernels (norm, activation, rope, kv.store,
attention, MLA attention, the fused MoE, the W4A16 int4/fp4 GEMMs, the batch-1 GEMV, the grammar mask) and
the torch-op kernels a GPU runs as they are (moe.route, sampling, gemm.dense through the
vendor BLAS). Not a backend: sglang-cuda and sglang-rocm each register these modules with a
`TritonTarget` (target.py) carrying their own launch tables.

Module rules (every kernel follows them): common.py. Every module has
`register(registry, target)`.
"""

__version__ = "0.1.0"

KERNEL_MODULES: tuple[str, ...] = (
    "sglang_triton.norm",
    "sglang_triton.activation",
    "sglang_triton.rope",
    "sglang_triton.kv",
    "sglang_triton.attention",
    "sglang_triton.mla",
    "sglang_triton.moe",
    "sglang_triton.dense",
    "sglang_triton.gemm_int4",
    "sglang_triton.gemm_fp4",
    "sglang_triton.sampling",
    "sglang_triton.grammar",
)
