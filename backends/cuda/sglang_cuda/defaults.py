"""Server defaults by GPU memory tier, as SGLang sets them for NVIDIA GPUs.

Chunked prefill: 2k tokens below 35 GiB, 4k below 60 GiB, 8k below 160 GiB, 16k above.
Decode graphs are captured for batch sizes 1, 2, 4, 8, 16, 24, 32, then steps of 16 up to the
tier's largest (SGLang's `cuda_graph_max_bs` for tensor parallelism below 4); the list rule is
the core's (`graph_batch_sizes`), so `--cuda-graph-max-bs` extends it the same way.
The static memory fraction (weights + KV pool) leaves the rest for activations, the decode
graphs' memory pool (their logits buffers: max_bs x vocab floats each) and the allocator's slack:
a few GiB, so small cards keep a larger share free.
"""

from __future__ import annotations

from sglang.backend import ServerDefaults
from sglang.model_executor.graph_runner import graph_batch_sizes

GIB = 1 << 30

# (memory below, chunked_prefill_size, largest graph batch size, mem_fraction_static);
# the last row has no bound.
TIERS = (
    (20 * GIB, 2048, 8, 0.80),  # T4, RTX 4080
    (35 * GIB, 2048, 24, 0.82),  # A10, L40, RTX 4090
    (60 * GIB, 4096, 32, 0.85),  # A100 40GB, L40S
    (160 * GIB, 8192, 256, 0.87),  # H100, H200, H20
    (None, 16384, 256, 0.88),  # B200 and larger
)


def server_defaults(total_memory_bytes: int) -> ServerDefaults:
    for bound, chunk, max_bs, fraction in TIERS:  # noqa: B007 - the matching row is used below
        if bound is None or total_memory_bytes < bound:
            break
    return ServerDefaults(
        dtype=preferred_dtype(),
        chunked_prefill_size=chunk,
        graph_batch_sizes=graph_batch_sizes(max_bs),
        mem_fraction_static=fraction,
    )


def preferred_dtype() -> str:
    """bfloat16 from Ampere on (SGLang's and vLLM's choice for float32 checkpoints there),
    float16 before it."""
    import torch

    return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float16"
