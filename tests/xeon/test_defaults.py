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


AVX512_CPU = {"avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile"}


@pytest.fixture
def capped(monkeypatch):
    """cpu_flags() of an AVX-512 + AMX CPU, read again under the cap the test sets."""
    monkeypatch.setattr(cpu, "read_cpu_flags", lambda: frozenset(AVX512_CPU))
    cpu.cpu_flags.cache_clear()
    yield lambda value: (monkeypatch.setenv(cpu.MAX_ISA_ENV, value), cpu.cpu_flags.cache_clear())
    cpu.cpu_flags.cache_clear()


def test_max_isa_avx2_gives_an_avx2_cpus_flags_defaults_and_build(capped):
    capped("avx2")
    assert cpu.cpu_flags() == {"avx2", "fma"}
    assert not cpu.has_avx512() and not cpu.has_amx() and cpu.has_avx2()
    d = plugin.sglang_backend_server_defaults(total_memory_bytes=16 * GIB)
    assert (d.preferred_dtype(gguf=False), d.preferred_dtype(gguf=True)) == (None, "bfloat16")
    assert "-mno-avx512f" in cpu.march_flags()
    probe = plugin.sglang_backend_probe()
    assert probe.available and "capped at avx2 by SGLANG_XEON_MAX_ISA" in " ".join(probe.reasons)


def test_max_isa_avx512_drops_only_amx(capped):
    capped("AVX512")
    assert cpu.cpu_flags() == AVX512_CPU - {"amx_tile"}
    assert "-mno-avx512f" not in cpu.march_flags()


@pytest.mark.parametrize("value", ["", "native"])
def test_max_isa_unset_keeps_the_cpu(capped, value):
    capped(value)
    assert cpu.cpu_flags() == AVX512_CPU
    assert cpu.march_flags() == ("-march=native",)


def test_max_isa_unknown_value_is_named(capped):
    capped("avx3")
    with pytest.raises(ValueError, match="SGLANG_XEON_MAX_ISA='avx3': expected one of native"):
        cpu.cpu_flags()
    probe = plugin.sglang_backend_probe()
    assert not probe.available and "avx3" in " ".join(probe.reasons)
