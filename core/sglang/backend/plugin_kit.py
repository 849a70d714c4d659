"""Helpers for writing a backend package: what every plugin module would otherwise repeat.

- `register_kernel_modules`: the body of `sglang_backend_register_kernels` for a backend whose
  kernels live one op family per module, each module with `register(registry, **context)`.
- `installed_version`, `device_files`: the cheap facts a probe reads (package metadata, device
  nodes), never importing the vendor library.
- `decode_from_extend`: attention.decode from an attention.extend kernel (one query each).
- `EXPLICIT_ONLY`: the probe detail that keeps a backend out of `--device auto`.
- `counted_devices_probe`: the tail of a GPU-style probe: unavailable with the reasons found so
  far, else ask the device count (the one call that talks to the driver) and say how many.

Nothing here names a device: the backend passes its own count function, device noun and
visibility variable.
"""

from __future__ import annotations

import glob
import importlib
import importlib.metadata as md
import importlib.util
import os
from collections.abc import Callable, Iterable
from typing import Any

import torch

from sglang.backend.types import ProbeResult

EXPLICIT_ONLY = "explicit_only"
"""A probe detail: the backend runs only when named (`--device NAME`, `sglang conformance
--backend NAME`), never by `--device auto`. Emulation modes set it: a GPU backend emulated on
the CPU must not be preferred to the real CPU backend."""


def register_kernel_modules(registry: Any, modules: Iterable[str], **context: Any) -> None:
    """Import each module (dotted name) and call its `register(registry, **context)`, in order.

    `context` is what a shared kernel package needs to know about the backend registering it
    (its launch tables, say); a backend's own modules usually take none."""
    for name in modules:
        importlib.import_module(name).register(registry, **context)


def installed_version(distribution: str, module: str | None = None) -> str | None:
    """The installed `distribution`'s version from metadata, or None when it is not installed.

    With `module`, the module must also be importable (looked up, not imported): a package
    present on the path without metadata reads as "unknown version"."""
    if module is not None and importlib.util.find_spec(module) is None:
        return None
    try:
        return md.version(distribution)
    except md.PackageNotFoundError:
        return None if module is None else "unknown version"


def device_files(*patterns: str) -> list[str]:
    """Device nodes matching any of the glob `patterns`, sorted."""
    return sorted({path for pattern in patterns for path in glob.glob(pattern)})


def counted_devices_probe(
    reasons: list[str],
    details: dict[str, Any],
    count: Callable[[], int],
    noun: str,
    visible_env: str,
    notes: Iterable[str] = (),
    count_call: str = "device count",
) -> ProbeResult:
    """Unavailable with `reasons` when there are any (the device is never asked); else
    `count()` devices: none is unavailable (naming `visible_env`, the usual cause), some is
    available with "N <noun>(s)" followed by `notes`. `details` gains device_count."""
    if reasons:
        return ProbeResult.unavailable(*reasons, **details)
    n = count()
    details["device_count"] = n
    if n == 0:
        return ProbeResult.unavailable(
            f"no {noun} visible to torch ({count_call} is 0; "
            f"{visible_env}={os.environ.get(visible_env, '<unset>')})",
            **details,
        )
    return ProbeResult.ok(", ".join([f"{n} {noun}(s)", *notes]), **details)


def decode_from_extend(extend: Callable[..., Any]) -> Callable[..., Any]:
    """attention.decode served by an attention.extend kernel: each sequence's one query is
    its one new token (qo_indptr = 0, 1, ..., B), which is what decode means."""

    def decode(
        q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale, sliding_window=-1, logit_softcap=0.0
    ):
        one_each = torch.arange(q.shape[0] + 1, dtype=torch.int32, device=kv_indptr.device)
        return extend(
            q,
            k_cache,
            v_cache,
            one_each,
            kv_indptr,
            kv_indices,
            sm_scale,
            sliding_window=sliding_window,
            logit_softcap=logit_softcap,
        )

    decode.__name__ = f"decode_from_{getattr(extend, '__name__', 'extend')}"
    return decode
