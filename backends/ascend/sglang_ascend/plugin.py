"""The ascend backend's implementation of the sglang backend contract."""

from __future__ import annotations

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

from sglang_ascend import __version__, kernels
from sglang_ascend.probe import probe
from sglang_ascend.runtime import NpuRuntime, npu_module


@hookimpl
def sglang_backend_info() -> BackendInfo:
    return BackendInfo(
        name="ascend",
        version=__version__,
        device_type="npu",
        kind=KIND_ACCELERATOR,
        auto_priority=80,
        description="Huawei Ascend NPUs: torch-npu ops, HCCL collectives",
        verification=(
            "unverified: kernels written against torch-npu's documented operators; no NPU run yet "
            "(docs/ascend.md says how to run conformance and send the report)"
        ),
    )


@hookimpl
def sglang_backend_probe() -> ProbeResult:
    return probe()


@hookimpl
def sglang_backend_capabilities() -> Capabilities:
    """What an Atlas A2 (910B) NPU offers: float16/bfloat16/float32, int8 cube units, no fp8;
    the KV cache in 128-token pages is the layout its attention kernels prefer."""
    return Capabilities(
        dtypes=frozenset({"float32", "float16", "bfloat16"}),
        int4_schemes=frozenset({"awq", "gptq"}),
        int8=True,
        attention_features=frozenset({"gqa", "sliding_window", "custom_scale"}),
        kv_layouts=("NHD",),
        page_sizes=(1, 16, 64, 128),
        collectives=frozenset(
            {"all_reduce", "all_gather", "reduce_scatter", "broadcast", "send_recv"}
        ),
    )


@hookimpl
def sglang_backend_register_kernels(registry) -> None:
    register_kernel_modules(registry, kernels.KERNEL_MODULES)


@hookimpl
def sglang_backend_create_runtime(device_index: int) -> NpuRuntime:
    return NpuRuntime(device_index)


@hookimpl
def sglang_backend_create_communicator(
    rank: int, world_size: int, init_method: str, device_index: int
) -> ProcessGroupCommunicator:
    npu_module().set_device(device_index)
    return ProcessGroupCommunicator("hccl", rank, world_size, init_method)


@hookimpl
def sglang_backend_conformance_manifest() -> ConformanceManifest:
    return ConformanceManifest()
