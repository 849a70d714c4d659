"""The xeon backend's implementation of the sglang backend contract."""

from __future__ import annotations

import os

from sglang.backend import (
    KIND_CPU,
    BackendInfo,
    Capabilities,
    ConformanceManifest,
    CpuRuntime,
    ProbeResult,
    ProcessGroupCommunicator,
    ServerDefaults,
    hookimpl,
)
from sglang.backend.plugin_kit import register_kernel_modules

from sglang_xeon import __version__, cpu, kernels

# The KV pool's default cap (vLLM's CPU backend: VLLM_CPU_KVCACHE_SPACE=4 GiB), at most a
# quarter of RAM: 180k tokens of SmolLM2-135M in bfloat16, 32k of Llama-3.1-8B.
KV_CACHE_BYTES = 4 << 30
W4A8_ENV = "SGLANG_XEON_W4A8"


@hookimpl
def sglang_backend_info() -> BackendInfo:
    return BackendInfo(
        name="xeon",
        version=__version__,
        device_type="cpu",
        kind=KIND_CPU,
        auto_priority=10,
        description="x86 CPU kernels: torch native, oneDNN/AMX, IPEX when it matches torch",
        verification=(
            "conformance in CI on the CPU; the IPEX kernels in a torch 2.8 venv on the same CPU "
            "(docs/conformance/xeon-ipex.json)"
        ),
    )


@hookimpl
def sglang_backend_probe() -> ProbeResult:
    if not cpu.is_x86():
        return ProbeResult.unavailable(f"not an x86 CPU (machine is {cpu.platform.machine()})")
    try:
        cap = cpu.max_isa()
    except ValueError as e:
        return ProbeResult.unavailable(str(e))
    notes = [
        "AVX-512" if cpu.has_avx512() else "no AVX-512",
        "AVX-512 BF16" if cpu.has_avx512_bf16() else "no AVX-512 BF16",
        "AMX" if cpu.has_amx() else "no AMX",
        cpu.ipex_status()[1],
    ]
    if cap is not None:
        notes.append(f"capped at {cap} by {cpu.MAX_ISA_ENV}")
    return ProbeResult.ok(", ".join(notes))


def _int4_schemes() -> frozenset[str]:
    """gemm.int4's schemes and "w4a8" (gemm.w4a8: int8 activations, the GGUF plan's choice for
    4-bit layers in bfloat16; its native kernel needs AVX-512 VNNI, which every CPU with AVX-512
    BF16 has, else a torch kernel serves it), unless SGLANG_XEON_W4A8=0 keeps W4A16."""
    schemes = {"awq", "gptq", "gptq_act_order", "float_zeros", "w4a8"}
    if os.environ.get(W4A8_ENV, "1") == "0":
        schemes.discard("w4a8")
    return frozenset(schemes)


@hookimpl
def sglang_backend_capabilities() -> Capabilities:
    return Capabilities(
        dtypes=frozenset({"float32", "bfloat16", "float16"}),
        fp8_formats=frozenset({"e4m3fn"}),
        fp4_formats=frozenset({"nvfp4", "mxfp4"}),
        int4_schemes=_int4_schemes(),
        int8=True,
        attention_features=frozenset(
            {"gqa", "sliding_window", "logit_softcap", "custom_scale", "sinks"}
        ),
        moe_features=frozenset({"swigluoai", "bias", "fp8_block", "mxfp4", "int4", "act_order"}),
        kv_layouts=("NHD",),
        page_sizes=(1, 16, 64),
        graph_capture=False,
        async_streams=False,
        collectives=frozenset(
            {"all_reduce", "all_gather", "reduce_scatter", "broadcast", "send_recv", "all_to_all"}
        ),
        extensions={"amx": cpu.has_amx(), "ipex": cpu.ipex_status()[0]},
    )


@hookimpl
def sglang_backend_register_kernels(registry) -> None:
    register_kernel_modules(registry, kernels.KERNEL_MODULES)


@hookimpl
def sglang_backend_create_runtime(device_index: int) -> CpuRuntime:
    return CpuRuntime(device_index)


@hookimpl
def sglang_backend_create_communicator(rank, world_size, init_method, device_index):
    return ProcessGroupCommunicator("gloo", rank, world_size, init_method)


@hookimpl
def sglang_backend_server_defaults(total_memory_bytes: int) -> ServerDefaults:
    # CPU decode is bandwidth-bound and prefill is compute-bound: small chunks keep TTFT of
    # queued requests bounded. bfloat16 where the CPU multiplies it natively (AVX-512 BF16,
    # AMX), as SGLang's CPU path serves: half the bytes of float32 a token.
    native_bf16 = cpu.has_avx512_bf16() or cpu.has_amx()
    return ServerDefaults(
        mem_fraction_static=0.6,
        chunked_prefill_size=2048,
        max_running_requests=64,
        dtype="bfloat16" if native_bf16 else None,
        # without it, a GGUF file's 4-bit layers still take bf16 activations natively (the
        # AVX2 gemm.w4a8 kernel): SmolLM2's decode 9.6 tok/s in float32, 76 in bfloat16
        gguf_dtype="bfloat16" if not native_bf16 and cpu.has_avx2() else None,
        kv_cache_bytes=min(KV_CACHE_BYTES, total_memory_bytes // 4),
    )


@hookimpl
def sglang_backend_conformance_manifest() -> ConformanceManifest:
    return ConformanceManifest()
