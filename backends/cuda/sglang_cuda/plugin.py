"""The cuda backend's implementation of the sglang backend contract.

Heavy work happens only after selection: the probe reads the torch build and the driver's
footprint, capabilities are a constant record, and the runtime and communicator touch the GPU
only when the core asks for them.
"""

from __future__ import annotations

from sglang.backend import (
    KIND_ACCELERATOR,
    BackendInfo,
    Capabilities,
    ConformanceManifest,
    ExpectedFailure,
    ProbeResult,
    ServerDefaults,
    hookimpl,
)

from sglang_cuda import __version__, kernels
from sglang_cuda.arch import compute_capability
from sglang_cuda.communicator import NcclCommunicator
from sglang_cuda.defaults import server_defaults
from sglang_cuda.probe import probe, triton_version
from sglang_cuda.runtime import CudaRuntime

COLLECTIVES = frozenset({"all_reduce", "all_gather", "reduce_scatter", "broadcast", "send_recv"})


@hookimpl
def sglang_backend_info() -> BackendInfo:
    return BackendInfo(
        name="cuda",
        version=__version__,
        device_type="cuda",
        kind=KIND_ACCELERATOR,
        auto_priority=100,
        description="NVIDIA GPUs: Triton kernels, NCCL collectives, CUDA graphs",
        verification=(
            "conformance on an H200 (docs/conformance/cuda-h200.json); its Triton kernels also "
            "in Triton's interpreter in CI (tests/cuda)"
        ),
    )


@hookimpl
def sglang_backend_probe() -> ProbeResult:
    return probe()


@hookimpl
def sglang_backend_capabilities() -> Capabilities:
    return capabilities_for(compute_capability())


def capabilities_for(arch: tuple[int, int] | None) -> Capabilities:
    """What the kernels can do on GPUs of compute capability `arch` (the lowest visible one;
    None when unreadable, taken as Hopper, sm_90, the architecture this backend targets).

    bfloat16 needs sm_80 (Ampere); the fp8 GEMM needs sm_89 (Ada, Hopper: e4m3 tensor cores
    and torch._scaled_mm); W8A8 int8 takes sm_80 (int8 MMA, cuBLASLt int8). FP4 is W4A16:
    codes and scales are decoded with integer arithmetic in the kernel, so it needs no
    Blackwell FP4 units and runs wherever 16-bit tl.dot does. The int4 kernel takes integer
    and float zero points alike."""
    major_minor = arch or (9, 0)
    ampere = major_minor >= (8, 0)
    dtypes = {"float32", "float16"} | ({"bfloat16"} if ampere else set())
    return Capabilities(
        dtypes=frozenset(dtypes),
        fp8_formats=frozenset({"e4m3fn", "e5m2"} if major_minor >= (8, 9) else ()),
        fp4_formats=frozenset({"nvfp4", "mxfp4"}),
        int4_schemes=frozenset({"awq", "gptq", "gptq_act_order", "float_zeros"}),
        int8=ampere,
        attention_features=frozenset(
            {"gqa", "sliding_window", "logit_softcap", "custom_scale", "sinks"}
        ),
        moe_features=frozenset({"swigluoai", "bias", "fp8_block", "mxfp4", "int4", "act_order"}),
        kv_layouts=("NHD",),
        page_sizes=(1, 16, 64),
        graph_capture=True,
        async_streams=True,
        collectives=COLLECTIVES,
        extensions={
            "triton": triton_version(),
            "compute_capability": f"{major_minor[0]}.{major_minor[1]}" if arch else "unknown",
        },
    )


@hookimpl
def sglang_backend_register_kernels(registry) -> None:
    kernels.register(registry)


@hookimpl
def sglang_backend_create_runtime(device_index: int) -> CudaRuntime:
    return CudaRuntime(device_index)


@hookimpl
def sglang_backend_create_communicator(
    rank: int, world_size: int, init_method: str, device_index: int
) -> NcclCommunicator:
    return NcclCommunicator(rank, world_size, init_method, device_index)


@hookimpl
def sglang_backend_server_defaults(total_memory_bytes: int) -> ServerDefaults:
    return server_defaults(total_memory_bytes)


# Measured on an H200 (issue 18's relative-RMS bounds). The Triton scaled GEMM's fp8 path without
# block scales (kernels/scaled_mm.py) sat at 4.8e-4 to 1.2e-3 relative RMS in float32 (bound
# 2.5e-4): Hopper's fp8 MMA accumulates in reduced precision. Promoting partial sums to float32
# every BLOCK_K (tl.dot's max_num_imprecise_acc) fixed it: float32 now 4e-8 to 6e-8, as in the
# interpreter. Two float16 per-channel cases stay above their bound (1.5e-3 and 8.6e-4 against
# 8.5e-4, NMSE 2.2e-6 and 7.5e-7) while float16 per-tensor (2.1e-4), float32 per-channel and
# the larger float16 per-channel case pass; the interpreter gives 2e-4 for them, so the cause
# is on the GPU and not yet found. Strict: a pass fails the run, so the list cannot go stale.
_FP8_ON_HOPPER = (
    "gemm.fp8[f16-M7-K257-N129-per_channel]",
    "gemm.fp8[f16-M33-K1000-N511-per_channel-bias]",
)


@hookimpl
def sglang_backend_conformance_manifest() -> ConformanceManifest:
    why = (
        "fp8 GEMM (Triton, per-channel scales, float16 output) on an H200: relative RMS 8.6e-4 "
        "to 1.5e-3 against 8.5e-4, 2e-4 in the interpreter; cause on the GPU not found (see "
        "plugin.py)"
    )
    return ConformanceManifest(
        expected_failures=tuple(
            ExpectedFailure(case, why, kernel="cuda.fp8_mm") for case in _FP8_ON_HOPPER
        )
    )
