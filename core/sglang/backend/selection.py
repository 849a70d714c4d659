"""Selection: which backend runs (`--device`), and which kernel serves each op.

`--device auto` prefers an available accelerator (highest `auto_priority`), then an available
CPU backend, then the reference backend; a backend whose probe says `explicit_only` (an
emulation mode) is never chosen by auto. `--device NAME` takes that backend or fails with the
reason it cannot run (its probe's reasons, or the traceback of its failed import). The choice
travels to child processes through the environment variable `SGLANG_DEVICE`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sglang.backend.discovery import Discovery, LoadedBackend, discover
from sglang.backend.plugin_kit import EXPLICIT_ONLY
from sglang.backend.registry import Resolution
from sglang.backend.types import KIND_ACCELERATOR, KIND_CPU, KIND_FALLBACK
from sglang.ops.specs import all_specs

logger = logging.getLogger(__name__)

DEVICE_ENV = "SGLANG_DEVICE"
AUTO = "auto"


class BackendSelectionError(RuntimeError):
    def __init__(self, message: str, summary: str | None = None) -> None:
        super().__init__(message)
        self.summary = summary or message


def requested_device(requested: str | None = None) -> str:
    return requested or os.environ.get(DEVICE_ENV) or AUTO


def choose_backend(found: Discovery, requested: str | None = None) -> tuple[LoadedBackend, str]:
    """Return the backend to use and a sentence saying why it was chosen."""
    want = requested_device(requested)
    if want != AUTO:
        # `summary` is one line naming what is wrong and what works instead (startup errors
        # print it); the message may carry a failed plugin's traceback (`sglang backends`).
        b = found.backends.get(want)
        if b is None:
            known = ", ".join(sorted(found.backends))
            message = f"--device {want}: no such backend installed (installed: {known})"
            raise BackendSelectionError(message, f"{message}; {_usable(found)}")
        if b.error is not None:
            raise BackendSelectionError(
                f"--device {want}: the backend failed at {b.error_stage}:\n{b.error}",
                f"--device {want}: the backend {b.why_unavailable()} (details: `sglang backends "
                f"--verbose`); {_usable(found)}",
            )
        if not b.available:
            message = f"--device {want}: unavailable: {b.why_unavailable()}"
            raise BackendSelectionError(message, f"{message}; {_usable(found)}")
        return b, f"requested with --device {want}"
    for kind in (KIND_ACCELERATOR, KIND_CPU, KIND_FALLBACK):
        ready = [b for b in found.backends.values() if _auto_candidate(b, kind)]
        if ready:
            best = max(ready, key=lambda b: (b.info.auto_priority, b.name))
            return best, f"auto: best available {kind} backend (priority {best.info.auto_priority})"
    raise BackendSelectionError("no backend is available, not even reference")


def _auto_candidate(b: LoadedBackend, kind: str) -> bool:
    explicit_only = b.probe is not None and b.probe.details.get(EXPLICIT_ONLY)
    return b.available and b.info.kind == kind and not explicit_only


def _usable(found: Discovery) -> str:
    ready = sorted(
        (b for b in found.backends.values() if b.available),
        key=lambda b: (-b.info.auto_priority, b.name),
    )
    names = ", ".join(b.name for b in ready) or "none"
    return f"available: {names} (see `sglang backends`)"


@dataclass
class Platform:
    """The discovered backends, the selected one, and per-op kernel resolution for it."""

    found: Discovery
    backend: LoadedBackend
    reason: str
    device_index: int = 0  # this rank's device (tensor-parallel rank r: base + r)

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def capabilities(self):
        return self.backend.capabilities

    @cached_property
    def runtime(self):
        return self.backend.create_runtime(device_index=self.device_index)

    def resolve(self, op: str, config: Mapping[str, Any] | None = None) -> Resolution:
        return self.found.registry.resolve(op, self.name, self.capabilities, config)

    def kernel(self, op: str, config: Mapping[str, Any] | None = None) -> Callable[..., Any]:
        """The function to call for `op` on this platform (keyword arguments only)."""
        res = self.resolve(op, config)
        logger.debug("op %s -> %s", op, res.chosen.name)
        return res.chosen.fn

    def resolutions(self) -> list[Resolution]:
        return [self.resolve(spec.name) for spec in all_specs()]


def select_platform(requested: str | None = None, found: Discovery | None = None) -> Platform:
    found = found or discover()
    backend, reason = choose_backend(found, requested)
    os.environ[DEVICE_ENV] = backend.name  # child processes inherit the choice
    logger.info("backend %s selected (%s)", backend.name, reason)
    return Platform(found, backend, reason)
