"""The backend contract: the hooks a hardware backend implements.

A backend is a pluggy plugin (a module or an object) published under the entry-point group
`sglang.backends`. The core loads each entry point on its own, registers it in a plugin
manager of its own, and calls its hooks with keyword arguments only. Hooks marked REQUIRED
must be implemented: a backend missing one is refused at registration with the hook's name,
never given a silent default. Optional hooks have their defaults here in the core, once.

Versioning: `BackendInfo.api_version` must equal `sglang.backend.types.API_VERSION`. Hooks only
grow by gaining keyword arguments; pluggy passes an implementation only the arguments it names,
so a backend written for an older contract keeps working.

A minimal backend::

    from sglang.backend import hookimpl, BackendInfo, ProbeResult, Capabilities

    @hookimpl
    def sglang_backend_info():
        return BackendInfo(name="acme", version="1.0", device_type="cpu")

    @hookimpl
    def sglang_backend_probe():
        return ProbeResult.ok()
    ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from sglang.backend.communicator import Communicator
    from sglang.backend.registry import KernelRegistrar
    from sglang.backend.runtime import DeviceRuntime
    from sglang.backend.types import (
        BackendInfo,
        Capabilities,
        ConformanceManifest,
        ProbeResult,
        ServerDefaults,
    )

PROJECT = "sglang"
ENTRY_POINT_GROUP = "sglang.backends"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

REQUIRED_HOOKS = (
    "sglang_backend_info",
    "sglang_backend_probe",
    "sglang_backend_capabilities",
    "sglang_backend_register_kernels",
    "sglang_backend_create_runtime",
    "sglang_backend_create_communicator",
)
OPTIONAL_HOOKS = ("sglang_backend_server_defaults", "sglang_backend_conformance_manifest")


@hookspec(firstresult=True)
def sglang_backend_info() -> BackendInfo:
    """REQUIRED. Name, version, torch device type, api_version, kind and auto priority.
    Must be cheap: no device initialisation, no heavy import."""


@hookspec(firstresult=True)
def sglang_backend_probe() -> ProbeResult:
    """REQUIRED. Can this backend run here? Cheap: read versions with importlib.metadata,
    look for device files or drivers; never initialise a device, never import a vendor library
    that could take the process down. Unavailable results carry human-readable reasons."""


@hookspec(firstresult=True)
def sglang_backend_capabilities() -> Capabilities:
    """REQUIRED. Dtypes, fp8/fp4/int4 formats, attention features, KV layouts and page sizes,
    graph capture, async streams, collectives. Called only when the probe says available."""


@hookspec(firstresult=True)
def sglang_backend_register_kernels(registry: KernelRegistrar) -> None:
    """REQUIRED. Register this backend's kernels: `registry.register(op, fn, name=...,
    priority=..., available=..., unsupported=..., prepare=...)`. Ops a backend does not
    register fall back to the core's reference kernels at run time and count as unsupported in
    conformance. Optional `prepare(args) -> dict`: a one-time transform of the op's weight
    arguments (the spec's `weight_args`, given with the op's non-tensor arguments) into the
    kernel's preferred layout; layers call it once at load time and then pass its result in
    place of those weights on every call; conformance calls it before the kernel."""


@hookspec(firstresult=True)
def sglang_backend_create_runtime(device_index: int) -> DeviceRuntime:
    """REQUIRED. The device runtime for one device: torch device, memory info, synchronize,
    streams and events (or the synchronous fallback), seeding, graph capture if supported."""


@hookspec(firstresult=True)
def sglang_backend_create_communicator(
    rank: int, world_size: int, init_method: str, device_index: int
) -> Communicator:
    """REQUIRED. A communicator over `world_size` ranks (all_reduce, all_gather,
    reduce_scatter, broadcast, send/recv; all_to_all where the capabilities declare it),
    rendezvousing at `init_method` (a torch.distributed
    URL such as tcp://127.0.0.1:29500 or file:///tmp/x)."""


@hookspec(firstresult=True)
def sglang_backend_server_defaults(total_memory_bytes: int) -> ServerDefaults:
    """OPTIONAL (default: ServerDefaults(), the core's defaults). Server-argument defaults for
    this device, given its total memory."""


@hookspec(firstresult=True)
def sglang_backend_conformance_manifest() -> ConformanceManifest:
    """OPTIONAL (default: empty manifest). Expected failures and tolerance overrides for the
    conformance suite, each with a reason."""
