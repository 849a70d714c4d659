"""The reference backend: every op spec's plain-torch reference, on the CPU.

Always available, slow by design, and the fallback for any op a selected backend does not
implement. Its kernels are the same functions the conformance oracle runs in float64.
"""

from __future__ import annotations

import torch

from sglang.backend.communicator import ProcessGroupCommunicator
from sglang.backend.hookspecs import hookimpl
from sglang.backend.runtime import CpuRuntime
from sglang.backend.types import KIND_FALLBACK, BackendInfo, Capabilities, ProbeResult
from sglang.ops.specs import all_specs
from sglang.version import __version__


@hookimpl
def sglang_backend_info() -> BackendInfo:
    return BackendInfo(
        name="reference",
        version=__version__,
        device_type="cpu",
        kind=KIND_FALLBACK,
        description="plain-torch reference kernels (the conformance oracle)",
        verification="the oracle: conformance compares every backend with these in float64",
    )


@hookimpl
def sglang_backend_probe() -> ProbeResult:
    return ProbeResult.ok("always available")


@hookimpl
def sglang_backend_capabilities() -> Capabilities:
    dtypes = {"float32", "float16", "bfloat16"}
    if hasattr(torch, "float8_e4m3fn"):
        fp8 = {"e4m3fn", "e5m2"}
    else:
        fp8 = set()
    return Capabilities(
        dtypes=frozenset(dtypes),
        fp8_formats=frozenset(fp8),
        fp4_formats=frozenset({"nvfp4", "mxfp4"}),
        int4_schemes=frozenset({"awq", "gptq", "gptq_act_order", "float_zeros", "w4a8"}),
        int8=True,
        attention_features=frozenset(
            {"gqa", "sliding_window", "logit_softcap", "custom_scale", "sinks"}
        ),
        moe_features=frozenset({"swigluoai", "bias", "fp8_block", "mxfp4", "int4", "act_order"}),
        kv_layouts=("NHD",),
        kv_cache_dtypes=frozenset({"fp8_e4m3", "fp8_e5m2"}) if fp8 else frozenset(),
        page_sizes=(1, 16, 64),
        collectives=frozenset(
            {"all_reduce", "all_gather", "reduce_scatter", "broadcast", "send_recv", "all_to_all"}
        ),
    )


@hookimpl
def sglang_backend_register_kernels(registry) -> None:
    for spec in all_specs():
        registry.register(spec.name, spec.reference, name=f"reference.{spec.name}", priority=-1000)


@hookimpl
def sglang_backend_create_runtime(device_index: int) -> CpuRuntime:
    return CpuRuntime(device_index)


@hookimpl
def sglang_backend_create_communicator(rank, world_size, init_method, device_index):
    return ProcessGroupCommunicator("gloo", rank, world_size, init_method)
