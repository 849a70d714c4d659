"""The tpu backend's implementation of the sglang backend contract."""

from __future__ import annotations

import importlib

from sglang.backend import (
    KIND_ACCELERATOR,
    BackendInfo,
    Capabilities,
    ConformanceManifest,
    DeviceRuntime,
    ProbeResult,
    ProcessGroupCommunicator,
    hookimpl,
)
from sglang.backend.plugin_kit import register_kernel_modules

from sglang_tpu import __version__, kernels
from sglang_tpu.probe import probe, stack
from sglang_tpu.runtime import create_runtime


@hookimpl
def sglang_backend_info() -> BackendInfo:
    return BackendInfo(
        name="tpu",
        version=__version__,
        device_type="xla",
        kind=KIND_ACCELERATOR,
        auto_priority=70,
        description="Google TPUs: JAX/Pallas or torch-xla kernels, ICI collectives",
    )


@hookimpl
def sglang_backend_probe() -> ProbeResult:
    return probe()


@hookimpl
def sglang_backend_capabilities() -> Capabilities:
    """What a TPU v5e/v6e offers: bfloat16 and float32 (float16 is not native), int8 MXU
    matmuls, no fp8. The torch-xla process group has no point-to-point send/recv."""
    return Capabilities(
        dtypes=frozenset({"float32", "bfloat16"}),
        int8=True,
        attention_features=frozenset({"gqa", "sliding_window", "logit_softcap", "custom_scale"}),
        kv_layouts=("NHD",),
        page_sizes=(1, 16, 64),
        collectives=frozenset({"all_reduce", "all_gather", "reduce_scatter", "broadcast"}),
        extensions={"via": "torch-xla" if stack().use_xla else "jax"},
    )


@hookimpl
def sglang_backend_register_kernels(registry) -> None:
    register_kernel_modules(registry, kernels.KERNEL_MODULES)


@hookimpl
def sglang_backend_create_runtime(device_index: int) -> DeviceRuntime:
    return create_runtime(stack().use_xla, device_index)


@hookimpl
def sglang_backend_create_communicator(
    rank: int, world_size: int, init_method: str, device_index: int
) -> ProcessGroupCommunicator:
    if stack().use_xla:
        importlib.import_module("torch_xla.distributed.xla_backend")  # registers "xla"
        return ProcessGroupCommunicator("xla", rank, world_size, init_method)
    return ProcessGroupCommunicator("gloo", rank, world_size, init_method)  # host tensors


@hookimpl
def sglang_backend_conformance_manifest() -> ConformanceManifest:
    return ConformanceManifest()
