"""The rocm backend's implementation of the sglang backend contract."""

from __future__ import annotations

import torch
from sglang.backend import (
    KIND_ACCELERATOR,
    BackendInfo,
    Capabilities,
    ConformanceManifest,
    ProbeResult,
    ProcessGroupCommunicator,
    hookimpl,
)
from sglang.backend.plugin_kit import register_kernel_modules

from sglang_rocm import __version__, kernels
from sglang_rocm.probe import aiter_version, probe
from sglang_rocm.runtime import RocmRuntime


@hookimpl
def sglang_backend_info() -> BackendInfo:
    return BackendInfo(
        name="rocm",
        version=__version__,
        device_type="cuda",  # a HIP build of torch names AMD GPUs "cuda"
        kind=KIND_ACCELERATOR,
        auto_priority=90,
        description="AMD GPUs: Triton kernels on HIP, aiter where installed, RCCL collectives",
    )


@hookimpl
def sglang_backend_probe() -> ProbeResult:
    return probe()


@hookimpl
def sglang_backend_capabilities() -> Capabilities:
    """What an MI300-class GPU offers through this backend today. Its fp8 is the FNUZ variant
    (e4m3fnuz), not the OCP e4m3fn/e5m2 the fp8 op specs use, so no fp8 format is claimed;
    graph capture and async streams wait for the thin runtime to grow."""
    return Capabilities(
        dtypes=frozenset({"float32", "float16", "bfloat16"}),
        int4_schemes=frozenset({"awq", "gptq", "gptq_act_order"}),
        int8=True,
        attention_features=frozenset({"gqa", "sliding_window", "logit_softcap", "custom_scale"}),
        kv_layouts=("NHD",),
        page_sizes=(1, 16, 64),
        collectives=frozenset(
            {"all_reduce", "all_gather", "reduce_scatter", "broadcast", "send_recv"}
        ),
        extensions={"amd_aiter": aiter_version(), "hip": getattr(torch.version, "hip", None)},
    )


@hookimpl
def sglang_backend_register_kernels(registry) -> None:
    register_kernel_modules(registry, kernels.KERNEL_MODULES)


@hookimpl
def sglang_backend_create_runtime(device_index: int) -> RocmRuntime:
    return RocmRuntime(device_index)


@hookimpl
def sglang_backend_create_communicator(
    rank: int, world_size: int, init_method: str, device_index: int
) -> ProcessGroupCommunicator:
    torch.cuda.set_device(device_index)
    # torch.distributed's "nccl" transport is RCCL on a ROCm build.
    return ProcessGroupCommunicator("nccl", rank, world_size, init_method)


@hookimpl
def sglang_backend_conformance_manifest() -> ConformanceManifest:
    return ConformanceManifest()
