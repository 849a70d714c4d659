"""What this CPU offers, read cheaply from /proc/cpuinfo (no import of vendor libraries)."""

from __future__ import annotations

import functools
import importlib.metadata as md
import platform

import torch


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_avx512() -> bool:
    return "avx512f" in cpu_flags()


def has_avx2() -> bool:
    return {"avx2", "fma"} <= cpu_flags()


def has_avx512_bf16() -> bool:
    return "avx512_bf16" in cpu_flags()


def has_amx() -> bool:
    return {"amx_tile", "amx_bf16"} <= cpu_flags()


@functools.lru_cache(maxsize=1)
def ipex_status() -> tuple[bool, str]:
    """(usable, why). IPEX ends the process on import when its torch version differs from the
    installed torch, so versions are compared from metadata before it is ever imported."""
    try:
        ipex_version = md.version("intel-extension-for-pytorch")
    except md.PackageNotFoundError:
        return False, "intel-extension-for-pytorch not installed"
    torch_mm = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    ipex_mm = ".".join(ipex_version.split("+")[0].split(".")[:2])
    if torch_mm != ipex_mm:
        return (
            False,
            f"intel-extension-for-pytorch {ipex_version} needs torch {ipex_mm}, found {torch.__version__}",
        )
    return True, f"intel-extension-for-pytorch {ipex_version}"


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
