"""Launch tables of the shared Triton kernels on AMD Instinct GPUs, per architecture.

What differs from the NVIDIA defaults the kernel modules carry:
- a wavefront is 64 lanes, so the row and GEMM kernels' warp counts (written for 32-lane warps)
  are halved: the same threads per program (TritonTarget.warp_size);
- software pipelining (num_stages) keeps one K/V (or weight) tile per stage in LDS: MI300X and
  MI325X have 64 KiB per workgroup, which fits one stage of the extend kernel's tiles at head
  dim 128 (Q 64x128 + K 64x128 + V 64x128 in 16-bit: 48 KiB) but not two (80 KiB); MI355X's
  160 KiB fits two. Decode and the GEMV stream their tiles once: one stage;
- attention's warp counts are given in wavefronts (4 x 64 lanes: the 256-thread workgroups the
  HIP backend of Triton schedules best for these tile shapes).
These are starting points derived from the hardware limits, not measurements: no AMD GPU was
available; benchmarks/tune_cuda_decode.py and tune_cuda_extend.py take the same tables.
"""

from __future__ import annotations

from sglang_triton.target import TritonTarget

from sglang_rocm.arch import Chip

EXTEND_TILE_BYTES = 64 * 128 * 2  # one [BLOCK 64, head dim 128] 16-bit tile


def pipeline_stages(lds_bytes: int, tile_bytes: int = EXTEND_TILE_BYTES, most: int = 2) -> int:
    """The most stages whose K and V tiles fit in LDS beside the resident Q tile (at least 1)."""
    stages = (lds_bytes - tile_bytes) // (2 * tile_bytes)
    return max(1, min(most, stages))


def rocm_target(c: Chip) -> TritonTarget:
    stages = pipeline_stages(c.lds_bytes)
    return TritonTarget(
        backend="rocm",
        blas="hipblaslt",
        warp_size=c.wave_size,
        shared_memory=c.lds_bytes,
        launch={
            "attention.decode": {"num_warps": 4, "num_stages": 1},
            "attention.extend": {"num_warps": 4, "num_stages": stages},
            "moe": {"num_stages": stages},
            "dense": {"gemv": {"num_warps": 4, "num_stages": 1}},
        },
    )
