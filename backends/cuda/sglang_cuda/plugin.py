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
    ProbeResult,
    ServerDefaults,
    hookimpl,
)

from sglang_cuda import __version__, kernels
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
    )


@hookimpl
def sglang_backend_probe() -> ProbeResult:
    return probe()


@hookimpl
def sglang_backend_capabilities() -> Capabilities:
    """What a Hopper GPU (sm_90) offers. Older architectures lack fp8 (sm_89 and up) and fp4
    tensor cores; per-architecture narrowing arrives with the kernels that depend on it. FP4
    is W4A16 (weights dequantised in the kernel), so it needs no Blackwell FP4 units."""
    return Capabilities(
        dtypes=frozenset({"float32", "float16", "bfloat16"}),
        fp8_formats=frozenset({"e4m3fn", "e5m2"}),
        fp4_formats=frozenset({"nvfp4", "mxfp4"}),
        int4_schemes=frozenset({"awq", "gptq", "gptq_act_order"}),
        int8=True,
        attention_features=frozenset({"gqa", "sliding_window", "logit_softcap", "custom_scale"}),
        kv_layouts=("NHD",),
        page_sizes=(1, 16, 64),
        graph_capture=True,
        async_streams=True,
        collectives=COLLECTIVES,
        extensions={"triton": triton_version()},
    )


@hookimpl
def sglang_backend_register_kernels(registry) -> None:
    kernels.register_all(registry)


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


@hookimpl
def sglang_backend_conformance_manifest() -> ConformanceManifest:
    return ConformanceManifest()
