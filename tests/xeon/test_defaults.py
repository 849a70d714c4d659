"""xeon's server defaults by what the CPU offers (its /proc/cpuinfo flags patched in): the
float type `--dtype auto` takes for checkpoints that leave it open, and for GGUF files."""

from __future__ import annotations

import pytest
from sglang.backend.types import ServerDefaults
from sglang_xeon import cpu, plugin

GIB = 1 << 30


@pytest.mark.parametrize(
    "flags, dtype, gguf",
    [
        ({"avx2", "fma", "avx512f", "avx512_bf16"}, "bfloat16", "bfloat16"),
        ({"avx2", "fma", "amx_tile", "amx_bf16"}, "bfloat16", "bfloat16"),
        # AVX2 alone: float32 checkpoints stay float32 (its bf16 matmuls are slow), a GGUF
        # file's 4-bit layers take bf16 activations on the AVX2 gemm.w4a8 kernel
        ({"avx2", "fma"}, None, "bfloat16"),
        ({"sse4_2"}, None, None),
    ],
)
def test_preferred_dtypes_follow_the_cpu(monkeypatch, flags, dtype, gguf):
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(flags))
    d = plugin.sglang_backend_server_defaults(total_memory_bytes=16 * GIB)
    assert d.preferred_dtype(gguf=False) == dtype
    assert d.preferred_dtype(gguf=True) == gguf


def test_preferred_dtype_rule():
    assert ServerDefaults().preferred_dtype(True) is None
    assert ServerDefaults(gguf_dtype="bfloat16").preferred_dtype(False) is None
    assert ServerDefaults(gguf_dtype="bfloat16").preferred_dtype(True) == "bfloat16"
    assert ServerDefaults(dtype="float16", gguf_dtype="bfloat16").preferred_dtype(True) == "float16"
