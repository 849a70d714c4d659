"""The tpu kernels (JAX route), one module per op family (mirroring sglang.ops), each with
register(): Pallas kernels where the TPU needs a kernel of its own (norm.rms, attention over
the paged cache) and jax.numpy where XLA fuses the op by itself (activations, rope, gemm.dense).
kv.store, moe, sampling and the grammar mask stay on the reference: on this route the KV cache
and the logits are torch tensors in host memory, where torch's scatter is the store.
"""

from __future__ import annotations

KERNEL_MODULES: tuple[str, ...] = (
    "sglang_tpu.kernels.norm",
    "sglang_tpu.kernels.activation",
    "sglang_tpu.kernels.rope",
    "sglang_tpu.kernels.attention",
    "sglang_tpu.kernels.gemm",
)
