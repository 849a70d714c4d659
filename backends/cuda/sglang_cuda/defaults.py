"""Server defaults by GPU memory tier, as SGLang sets them for NVIDIA GPUs.

Chunked prefill: 2k tokens below 35 GiB, 4k below 60 GiB, 8k below 160 GiB, 16k above.
Decode graphs are captured for batch sizes 1, 2, 4, 8, 12, then steps of 8 up to 256, the top
capped by the tier (SGLang's `cuda_graph_max_bs` for tensor parallelism below 4).
"""

from __future__ import annotations

from sglang.backend import ServerDefaults

GIB = 1 << 30
GRAPH_BATCH_SIZES = (1, 2, 4, 8, 12, *range(16, 257, 8))

# (memory below, chunked_prefill_size, largest graph batch size); the last row has no bound.
TIERS = (
    (20 * GIB, 2048, 8),  # T4, RTX 4080
    (35 * GIB, 2048, 24),  # A10, L40, RTX 4090
    (60 * GIB, 4096, 32),  # A100 40GB, L40S
    (160 * GIB, 8192, 256),  # H100, H200, H20
    (None, 16384, 256),  # B200 and larger
)


def server_defaults(total_memory_bytes: int) -> ServerDefaults:
    for bound, chunk, max_bs in TIERS:
        if bound is None or total_memory_bytes < bound:
            break
    return ServerDefaults(
        chunked_prefill_size=chunk,
        graph_batch_sizes=tuple(bs for bs in GRAPH_BATCH_SIZES if bs <= max_bs),
    )
