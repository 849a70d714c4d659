"""Run a cuda kernel through the conformance runner, with the op spec's own cases, generators,
tolerances and metrics (sglang.conformance.runner.run_case), on the GPU when there is one and
otherwise in Triton's interpreter on CPU tensors.

Import this module before any sglang_triton or sglang_cuda.kernels module: it sets
TRITON_INTERPRET=1 on a machine without a GPU, which triton reads when a kernel is decorated
(at import).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable

import pytest
import torch

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed: the cuda kernels are Triton", allow_module_level=True)
GPU = torch.cuda.is_available()
if not GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")
DEVICE = torch.device("cuda" if GPU else "cpu")

from sglang.backend import (  # noqa: E402
    KIND_CPU,
    BackendInfo,
    Capabilities,
    ConformanceManifest,
    CpuRuntime,
    ProbeResult,
    ProcessGroupCommunicator,
    hookimpl,
)
from sglang.backend.discovery import load_backend  # noqa: E402
from sglang.backend.registry import KernelRegistry  # noqa: E402
from sglang.conformance.runner import PASSED, Target, run_case  # noqa: E402
from sglang.ops import get_spec  # noqa: E402
from sglang.ops.spec import Case  # noqa: E402
from sglang_cuda.plugin import capabilities_for  # noqa: E402

CAPABILITIES = Capabilities(
    dtypes=frozenset({"float32", "float16", "bfloat16"}),
    fp8_formats=frozenset({"e4m3fn"}),
    fp4_formats=frozenset({"nvfp4", "mxfp4"}),
    int4_schemes=frozenset({"awq", "gptq", "gptq_act_order", "float_zeros"}),
    int8=True,
    # the optional features exactly as the cuda backend declares them (sinks, swigluoai, ...)
    attention_features=capabilities_for(None).attention_features,
    moe_features=capabilities_for(None).moe_features,
)


class _GpuRuntime(CpuRuntime):
    """The CPU runtime's behaviour on the current GPU (tests only need device and sync)."""

    def __init__(self) -> None:
        super().__init__(0)
        self.device = torch.device("cuda", torch.cuda.current_device())

    def synchronize(self) -> None:
        torch.cuda.synchronize()


def target(op: str, fn: Callable, prepare: Callable | None = None) -> Target:
    """A one-kernel backend ("k") serving `op` with `fn`, loaded the way plugins are."""
    registry = KernelRegistry()
    backend = load_backend(
        "k",
        lambda: plugin(lambda r: r.register(op, fn, name=f"k.{op}", prepare=prepare)),
        "test:Plugin",
        None,
        None,
        registry,
    )
    assert backend.available, backend.error
    return Target(backend, registry, backend.create_runtime(device_index=0))


def plugin(register: Callable) -> type:
    """A plugin for a backend "k" on this machine's device with the cuda backend's optional
    features (CAPABILITIES), whose kernel-registration hook is `register(registry)`."""

    class Plugin:
        @hookimpl
        def sglang_backend_info(self):
            return BackendInfo(name="k", version="0", device_type="cpu", kind=KIND_CPU)

        @hookimpl
        def sglang_backend_probe(self):
            return ProbeResult.ok()

        @hookimpl
        def sglang_backend_capabilities(self):
            return CAPABILITIES

        @hookimpl
        def sglang_backend_register_kernels(self, registry):
            register(registry)

        @hookimpl
        def sglang_backend_create_runtime(self, device_index):
            return _GpuRuntime() if GPU else CpuRuntime(device_index)

        @hookimpl
        def sglang_backend_create_communicator(self, rank, world_size, init_method, device_index):
            return ProcessGroupCommunicator("gloo", rank, world_size, init_method)

        @hookimpl
        def sglang_backend_conformance_manifest(self):
            return ConformanceManifest()

    return Plugin


def reference_and_kernels(modules: tuple[str, ...]):
    """A Discovery with the reference backend and "k" (`plugin`) holding the Triton kernel
    modules `modules`, registered for the cuda target as sglang_cuda registers them."""
    from sglang.backend.discovery import BUILTIN_REFERENCE, Discovery
    from sglang.backend.plugin_kit import register_kernel_modules
    from sglang_cuda.kernels import CUDA

    found = Discovery()
    found.backends["reference"] = load_backend(
        "reference",
        lambda: importlib.import_module(BUILTIN_REFERENCE),
        BUILTIN_REFERENCE,
        None,
        None,
        found.registry,
    )
    found.backends["k"] = load_backend(
        "k",
        lambda: plugin(lambda r: register_kernel_modules(r, modules, target=CUDA)),
        "test:Plugin",
        None,
        None,
        found.registry,
    )
    assert found.backends["k"].available, found.backends["k"].error
    return found


def declared(case: Case) -> bool:
    """Whether the cuda backend declares the features (attention:*, moe:*, kv_cache:*) the case
    needs: cases it does not (fp8 KV caches) never reach its kernels (conformance skips them; a layer needing them is given the reference
    kernel, OpTable.kernel_needing; an fp8 cache is refused at startup)."""
    features = capabilities_for(None).features()
    optional = ("attention:", "moe:", "kv_cache:")
    return all(k in features for k in case.requires if k.startswith(optional))


def cases(op: str, keep: Callable[[Case], bool] = lambda c: True) -> list[Case]:
    return [c for c in get_spec(op).cases() if keep(c) and declared(c)]


def check(op: str, fn: Callable, case: Case, prepare: Callable | None = None) -> None:
    """Run one case; fail with the runner's reason unless it passed."""
    r = run_case(target(op, fn, prepare), get_spec(op), case)
    assert r.status == PASSED, f"{case.id}: {r.status}: {r.reason}"


def params(
    op: str, keep: Callable[[Case], bool] = lambda c: True, f16_twins_on_gpu: bool = False
) -> list:
    """pytest parameters, one per selected case of `op`, with the case name as the id.
    f16_twins_on_gpu: in Triton's interpreter (no GPU), a float16 case whose bfloat16 twin (the
    same name, bf16 for f16) is selected too is skipped: for kernels with no float16-specific
    code the twin runs the same code, and the interpreter is slow. On a GPU both run."""
    selected = cases(op, keep)
    names = {c.name for c in selected}
    out = []
    for c in selected:
        twin = c.name.replace("f16", "bf16", 1)
        skip = f16_twins_on_gpu and not GPU and c.dtype == torch.float16 and twin in names
        reason = f"Triton's interpreter: {twin} runs the same kernel code (both run on a GPU)"
        out.append(pytest.param(c, id=c.name, marks=pytest.mark.skip(reason) if skip else ()))
    return out


def assert_graph_replays(step: Callable[[], torch.Tensor], x: torch.Tensor) -> None:
    """step() (which reads x) captured in a CUDA graph after a warm-up on a side stream, as the
    decode graphs are: with x refilled the replay equals a new eager call, and with x restored
    the first eager call's result, bit for bit."""
    x0 = x.clone()
    eager = step()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    x.copy_(torch.randn_like(x))
    graph.replay()
    torch.testing.assert_close(out, step(), rtol=0, atol=0)
    x.copy_(x0)
    graph.replay()
    torch.testing.assert_close(out, eager, rtol=0, atol=0)
