"""The rocm backend's implementation of the sglang backend contract.

On AMD GPUs: the shared Triton kernels (sglang_triton) with this architecture's launch tables,
aiter above them where it imports, RCCL through torch.distributed. With SGLANG_ROCM_EMULATE
set (emulation.py), the same kernels in Triton's interpreter on the CPU, for conformance on
machines without an AMD GPU; never chosen by `--device auto`.
"""

from __future__ import annotations

import torch
from sglang.backend import (
    KIND_ACCELERATOR,
    BackendInfo,
    Capabilities,
    ConformanceManifest,
    CpuRuntime,
    DeviceRuntime,
    ProbeResult,
    ProcessGroupCommunicator,
    hookimpl,
)
from sglang.backend.plugin_kit import EXPLICIT_ONLY

from sglang_rocm import __version__, emulation, kernels
from sglang_rocm.arch import CHIPS, chip, present_arch
from sglang_rocm.probe import aiter_version, probe
from sglang_rocm.runtime import RocmRuntime

COLLECTIVES = frozenset({"all_reduce", "all_gather", "reduce_scatter", "broadcast", "send_recv"})


def current_chip():
    return chip(emulation.emulated_arch() or present_arch())


@hookimpl
def sglang_backend_info() -> BackendInfo:
    return BackendInfo(
        name="rocm",
        version=__version__,
        device_type="cuda",  # a HIP build of torch names AMD GPUs "cuda"
        kind=KIND_ACCELERATOR,
        auto_priority=90,
        description="AMD GPUs: Triton kernels on HIP, aiter where installed, RCCL collectives",
        verification=(
            "emulated: conformance in CI in Triton's interpreter with gfx942's launch tables "
            "(SGLANG_ROCM_EMULATE=gfx942, tests/rocm); no AMD GPU run yet, aiter unchecked"
        ),
    )


@hookimpl
def sglang_backend_probe() -> ProbeResult:
    arch = emulation.emulated_arch()
    if arch is None:
        return probe()
    if arch not in CHIPS:
        known = ", ".join(CHIPS)
        return ProbeResult.unavailable(f"{emulation.ENV}={arch}: unknown architecture ({known})")
    why = emulation.enter()
    if why is not None:
        return ProbeResult.unavailable(f"{emulation.ENV}={arch}: {why}")
    c = CHIPS[arch]
    return ProbeResult.ok(
        f"emulated {arch} ({c.products}): Triton interpreter on the CPU, never chosen by "
        "--device auto",
        emulated=True,
        arch=arch,
        **{EXPLICIT_ONLY: True},
    )


@hookimpl
def sglang_backend_capabilities() -> Capabilities:
    """By gfx architecture (the lowest visible, or the emulated one): fp8 as the matrix cores
    multiply it (e4m3fnuz/e5m2fnuz on MI300/MI325, the OCP formats on MI355); the fp8 op spec
    is written in OCP e4m3fn, so on MI300 its cases skip as missing `fp8:e4m3fn` rather than
    run on a format the hardware does not have. Graph capture and async streams wait for the
    thin runtime to grow."""
    c = current_chip()
    return Capabilities(
        dtypes=frozenset({"float32", "float16", "bfloat16"}),
        fp8_formats=c.fp8_formats,
        fp4_formats=frozenset({"nvfp4", "mxfp4"}),  # W4A16: decoded in the Triton kernel
        int4_schemes=frozenset({"awq", "gptq", "gptq_act_order", "float_zeros"}),
        int8=True,
        attention_features=frozenset({"gqa", "sliding_window", "logit_softcap", "custom_scale"}),
        kv_layouts=("NHD",),
        page_sizes=(1, 16, 64),
        collectives=COLLECTIVES,
        extensions={
            "gfx_arch": c.arch,
            "products": c.products,
            "wave_size": c.wave_size,
            "lds_bytes": c.lds_bytes,
            "amd_aiter": aiter_version(),
            "hip": getattr(torch.version, "hip", None),
            "emulated": emulation.emulated_arch() is not None,
        },
    )


@hookimpl
def sglang_backend_register_kernels(registry) -> None:
    kernels.register(registry, current_chip())


@hookimpl
def sglang_backend_create_runtime(device_index: int) -> DeviceRuntime:
    if emulation.emulated_arch() is not None:
        return CpuRuntime(device_index)
    return RocmRuntime(device_index)


@hookimpl
def sglang_backend_create_communicator(
    rank: int, world_size: int, init_method: str, device_index: int
) -> ProcessGroupCommunicator:
    if emulation.emulated_arch() is not None:
        return ProcessGroupCommunicator("gloo", rank, world_size, init_method)
    torch.cuda.set_device(device_index)
    # torch.distributed's "nccl" transport is RCCL on a ROCm build.
    return ProcessGroupCommunicator("nccl", rank, world_size, init_method)


@hookimpl
def sglang_backend_conformance_manifest() -> ConformanceManifest:
    return ConformanceManifest()
