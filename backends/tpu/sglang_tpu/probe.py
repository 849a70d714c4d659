"""Can the tpu backend run here? Answered from metadata and device files alone.

Two ways to drive a TPU: torch-xla (torch tensors on the "xla" device) or JAX (kernels in
JAX/Pallas, torch tensors crossing by DLPack). torch-xla pins one torch minor release
(torch-xla 2.9.0 needs torch 2.9) and is not imported unless that matches; neither library is
imported by the probe. TPU chips show themselves as /dev/accel<N> (v2-v4) or under /dev/vfio
(v5e and later).
"""

from __future__ import annotations

import glob
import importlib.metadata as md
import os
from typing import NamedTuple

import torch
from sglang.backend import ProbeResult


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def minor(version: str) -> str:
    """2.9.0+cpu -> 2.9"""
    return ".".join(version.split("+")[0].split(".")[:2])


class Stack(NamedTuple):
    torch_xla: str | None  # version, when installed
    jax: str | None
    xla_matches_torch: bool

    @property
    def use_xla(self) -> bool:
        return self.torch_xla is not None and self.xla_matches_torch


def stack() -> Stack:
    xla = _version("torch-xla")
    return Stack(xla, _version("jax"), xla is not None and minor(xla) == minor(torch.__version__))


def tpu_devices() -> list[str]:
    found = glob.glob("/dev/accel[0-9]*")
    if os.path.isdir("/dev/vfio"):
        found += [p for p in glob.glob("/dev/vfio/*") if os.path.basename(p) != "vfio"]
    return sorted(found)


def probe() -> ProbeResult:
    s = stack()
    devices = tpu_devices()
    details = {"torch_xla": s.torch_xla, "jax": s.jax, "device_count": len(devices)}
    reasons = []
    if s.torch_xla is None and s.jax is None:
        reasons.append("neither torch-xla nor jax is installed")
    elif s.torch_xla is not None and not s.xla_matches_torch and s.jax is None:
        reasons.append(
            f"torch-xla {s.torch_xla} needs torch {minor(s.torch_xla)}, "
            f"found torch {torch.__version__}"
        )
    if not devices:
        reasons.append("no TPU device (no /dev/accel<N>, no /dev/vfio group)")
    if reasons:
        return ProbeResult.unavailable(*reasons, **details)
    via = f"torch-xla {s.torch_xla}" if s.use_xla else f"jax {s.jax} (torch tensors on the host)"
    return ProbeResult.ok(f"{len(devices)} TPU device file(s), via {via}", **details)
