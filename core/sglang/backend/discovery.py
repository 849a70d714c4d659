"""Backend discovery: load every installed backend plugin on its own and record what failed.

pluggy's bulk entry-point loader stops at the first broken plugin, so each entry point of the
group `sglang.backends` is loaded, registered and probed inside its own guard. A plugin that
fails at any stage is kept in the list with its stage and traceback; it never stops the others.
Only when a failed backend is the one the user selects does its error become fatal (see
`sglang.backend.selection`).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import logging
import traceback
from dataclasses import dataclass, field
from typing import Any

import pluggy

from sglang.backend import hookspecs
from sglang.backend.registry import KernelRegistry
from sglang.backend.types import (
    API_VERSION,
    KINDS,
    BackendInfo,
    Capabilities,
    ConformanceManifest,
    ProbeResult,
    ServerDefaults,
)

logger = logging.getLogger(__name__)

BUILTIN_REFERENCE = "sglang.backend.reference"


class BackendLoadError(Exception):
    """A plugin broke the contract (missing hook, wrong api_version, bad record)."""


@dataclass
class LoadedBackend:
    """One discovered backend plugin and what became of it."""

    name: str
    entry_point: str
    distribution: str | None = None
    distribution_version: str | None = None
    plugin: Any = None
    pm: pluggy.PluginManager | None = None
    info: BackendInfo | None = None
    probe: ProbeResult | None = None
    capabilities: Capabilities | None = None
    error: str | None = None  # traceback text
    error_stage: str | None = None  # "import", "register", "info", "probe", ...
    kernel_count: int = 0

    @property
    def loaded(self) -> bool:
        return self.error is None

    @property
    def available(self) -> bool:
        return self.loaded and self.probe is not None and self.probe.available

    def why_unavailable(self) -> str:
        if self.error is not None:
            last = self.error.strip().splitlines()[-1] if self.error.strip() else "error"
            return f"failed at {self.error_stage}: {last}"
        if self.probe is not None and not self.probe.available:
            return "; ".join(self.probe.reasons)
        return ""

    def failure_line(self) -> str:
        """One line naming the package, the hook (or stage) and the cause, for a backend that
        failed to load: what a user reads instead of a traceback."""
        package = self.distribution or self.entry_point
        hook = STAGE_HOOKS.get(self.error_stage or "", self.error_stage or "loading")
        text = (self.error or "").strip()
        cause = text.splitlines()[-1] if text else "unknown error"
        where = _innermost_plugin_frame(text)
        return f"backend {self.name!r} ({package}) failed in {hook}: {cause}" + (
            f" [{where}]" if where else ""
        )

    # --- hooks the rest of the core calls, with the contract's defaults -------------------
    def _hook(self, name: str, **kwargs: Any) -> Any:
        assert self.pm is not None, f"backend {self.name} is not loaded"
        return getattr(self.pm.hook, name)(**kwargs)

    def create_runtime(self, device_index: int = 0) -> Any:
        return self._hook("sglang_backend_create_runtime", device_index=device_index)

    def create_communicator(
        self, rank: int, world_size: int, init_method: str, device_index: int = 0
    ) -> Any:
        return self._hook(
            "sglang_backend_create_communicator",
            rank=rank,
            world_size=world_size,
            init_method=init_method,
            device_index=device_index,
        )

    def server_defaults(self, total_memory_bytes: int) -> ServerDefaults:
        result = self._hook("sglang_backend_server_defaults", total_memory_bytes=total_memory_bytes)
        return result if result is not None else ServerDefaults()

    def conformance_manifest(self) -> ConformanceManifest:
        result = self._hook("sglang_backend_conformance_manifest")
        return result if result is not None else ConformanceManifest()


# What was running when a backend failed, by `error_stage`.
STAGE_HOOKS = {
    "import": "the import of its entry point",
    "register": "registration (hook names checked against the contract)",
    "info": "sglang_backend_info",
    "probe": "sglang_backend_probe",
    "capabilities": "sglang_backend_capabilities",
    "kernels": "sglang_backend_register_kernels",
}


def _innermost_plugin_frame(traceback_text: str) -> str | None:
    """ "file:line" of the last traceback frame outside pluggy, importlib and this module."""
    frames = [
        line.strip()
        for line in traceback_text.splitlines()
        if line.strip().startswith('File "')
        and not any(skip in line for skip in ("pluggy", "importlib", "sglang/backend/discovery"))
    ]
    if not frames:
        return None
    path, _, rest = frames[-1].removeprefix('File "').partition('", line ')
    line = rest.split(",")[0]
    return f"{'/'.join(path.split('/')[-2:])}:{line}"


def _new_plugin_manager(name: str, plugin: Any) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name=name)
    pm.check_pending()  # a hookimpl with no matching spec (a typo) is an error
    missing = [h for h in hookspecs.REQUIRED_HOOKS if not getattr(pm.hook, h).get_hookimpls()]
    if missing:
        raise BackendLoadError(
            f"backend plugin {name!r} lacks required hooks: {', '.join(missing)}"
        )
    return pm


def _check_info(entry_name: str, info: Any) -> BackendInfo:
    if not isinstance(info, BackendInfo):
        raise BackendLoadError(
            f"sglang_backend_info returned {type(info).__name__}, not BackendInfo"
        )
    if info.api_version != API_VERSION:
        raise BackendLoadError(
            f"backend {info.name!r} speaks contract api_version {info.api_version}; "
            f"this sglang speaks {API_VERSION}"
        )
    if info.name != entry_name:
        raise BackendLoadError(
            f"entry point {entry_name!r} names a backend that calls itself {info.name!r}"
        )
    if info.kind not in KINDS:
        raise BackendLoadError(f"backend {info.name!r}: kind {info.kind!r} not in {KINDS}")
    return info


def load_backend(
    name: str,
    load: Any,
    entry_point: str,
    distribution: str | None,
    distribution_version: str | None,
    registry: KernelRegistry,
) -> LoadedBackend:
    """Load, register, probe and (when available) let one backend register its kernels.
    Every stage is guarded; failures are recorded on the returned record."""
    b = LoadedBackend(name, entry_point, distribution, distribution_version)
    stage = "import"
    try:
        plugin = load()
        if isinstance(plugin, type):
            plugin = plugin()
        b.plugin = plugin
        stage = "register"
        b.pm = _new_plugin_manager(name, plugin)
        stage = "info"
        b.info = _check_info(name, b._hook("sglang_backend_info"))
        stage = "probe"
        probe = b._hook("sglang_backend_probe")
        if not isinstance(probe, ProbeResult):
            raise BackendLoadError(f"sglang_backend_probe returned {type(probe).__name__}")
        b.probe = probe
        if probe.available:
            stage = "capabilities"
            caps = b._hook("sglang_backend_capabilities")
            if not isinstance(caps, Capabilities):
                raise BackendLoadError(
                    f"sglang_backend_capabilities returned {type(caps).__name__}"
                )
            b.capabilities = caps
            stage = "kernels"
            b._hook("sglang_backend_register_kernels", registry=registry.registrar(name))
            b.kernel_count = len(registry.kernels(backend=name))
    except KeyboardInterrupt:
        raise
    except BaseException:  # SystemExit from a vendor import included: never fatal here
        registry.remove_backend(name)
        b.error = traceback.format_exc()
        b.error_stage = stage
        logger.warning("backend %r failed at %s; others continue", name, stage)
    return b


@dataclass
class Discovery:
    backends: dict[str, LoadedBackend] = field(default_factory=dict)
    registry: KernelRegistry = field(default_factory=KernelRegistry)


def discover() -> Discovery:
    """Load the built-in reference backend, then every `sglang.backends` entry point."""
    found = Discovery()
    found.backends["reference"] = load_backend(
        "reference",
        lambda: importlib.import_module(BUILTIN_REFERENCE),
        BUILTIN_REFERENCE,
        "sglang",
        _version("sglang"),
        found.registry,
    )
    for ep in sorted(md.entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.value == BUILTIN_REFERENCE:
            continue
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else None
        dist_version = dist.version if dist is not None else None
        if ep.name in found.backends:
            dup = LoadedBackend(ep.name, ep.value, dist_name, dist_version)
            dup.error = f"BackendLoadError: backend name {ep.name!r} is already taken by "
            dup.error += f"{found.backends[ep.name].entry_point}"
            dup.error_stage = "register"
            found.backends[f"{ep.name} ({ep.value})"] = dup
            continue
        found.backends[ep.name] = load_backend(
            ep.name, ep.load, ep.value, dist_name, dist_version, found.registry
        )
    return found


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None
