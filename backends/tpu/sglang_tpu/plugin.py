"""The tpu backend's implementation of the sglang backend contract.

The route is JAX: kernels in JAX/Pallas (kernels/), torch tensors crossing by DLPack
(jax_bridge.py), the host runtime. SGLANG_TPU_EMULATE=1 runs the same kernels on JAX's CPU
platform with Pallas interpreted (emulation.py), never chosen by `--device auto`. torch-xla
stays recognised by the probe and the runtime (tensors on the "xla" device) but registers no
kernels of its own: see docs/architecture.md for why the JAX route was taken.
"""

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
from sglang.backend.plugin_kit import EXPLICIT_ONLY, installed_version, register_kernel_modules

from sglang_tpu import __version__, emulation, kernels
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
        verification=(
            "emulated: conformance and a tiny Llama's greedy tokens in CI on JAX's CPU platform, "
            "Pallas interpreted (SGLANG_TPU_EMULATE=1, tests/tpu); no TPU run yet"
        ),
    )


@hookimpl
def sglang_backend_probe() -> ProbeResult:
    if not emulation.emulated():
        return probe()
    jax = installed_version("jax")
    if jax is None:
        return ProbeResult.unavailable(f"{emulation.ENV}=1 but jax is not installed")
    emulation.enter()
    return ProbeResult.ok(
        f"emulated: jax {jax} on its CPU platform, Pallas interpreted; never chosen by "
        "--device auto",
        jax=jax,
        emulated=True,
        **{EXPLICIT_ONLY: True},
    )


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
        extensions={
            "via": "torch-xla" if stack().use_xla and not emulation.emulated() else "jax",
            "emulated": emulation.emulated(),
        },
    )


@hookimpl
def sglang_backend_register_kernels(registry) -> None:
    register_kernel_modules(registry, kernels.KERNEL_MODULES)


@hookimpl
def sglang_backend_create_runtime(device_index: int) -> DeviceRuntime:
    return create_runtime(stack().use_xla and not emulation.emulated(), device_index)


@hookimpl
def sglang_backend_create_communicator(
    rank: int, world_size: int, init_method: str, device_index: int
) -> ProcessGroupCommunicator:
    if stack().use_xla and not emulation.emulated():
        importlib.import_module("torch_xla.distributed.xla_backend")  # registers "xla"
        return ProcessGroupCommunicator("xla", rank, world_size, init_method)
    return ProcessGroupCommunicator("gloo", rank, world_size, init_method)  # host tensors


@hookimpl
def sglang_backend_conformance_manifest() -> ConformanceManifest:
    return ConformanceManifest()
