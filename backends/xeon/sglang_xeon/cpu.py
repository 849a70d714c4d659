"""What this CPU offers, read cheaply from /proc/cpuinfo (no import of vendor libraries)."""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
import platform

import torch

MAX_ISA_ENV = "SGLANG_XEON_MAX_ISA"
# What each cap removes from the CPU's flags (a prefix match), as oneDNN's ONEDNN_MAX_CPU_ISA
# and torch's ATEN_CPU_CAPABILITY cap theirs: a build that runs on an older CPU of a mixed
# fleet, or an AVX2-only CPU's kernels and defaults reproduced on an AVX-512 one.
MAX_ISA_DROPS = {
    "avx2": ("avx512", "amx"),
    "avx512": ("amx",),
}


def max_isa() -> str | None:
    """SGLANG_XEON_MAX_ISA's cap ("avx2", "avx512"), None when unset; any other value raises."""
    value = os.environ.get(MAX_ISA_ENV, "").strip().lower()
    if value in ("", "native"):
        return None
    if value not in MAX_ISA_DROPS:
        raise ValueError(
            f"{MAX_ISA_ENV}={value!r}: expected one of native, {', '.join(MAX_ISA_DROPS)}"
        )
    return value


def march_flags() -> tuple[str, ...]:
    """The native kernels' target: this CPU (-march=native), less what the cap drops."""
    cap = max_isa()
    if cap == "avx2":
        return ("-march=native", "-mno-avx512f", "-mno-amx-tile")
    if cap == "avx512":
        return ("-march=native", "-mno-amx-tile")
    return ("-march=native",)


def read_cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's flags, less what SGLANG_XEON_MAX_ISA drops."""
    flags = read_cpu_flags()
    cap = max_isa()
    if cap is None:
        return flags
    drops = MAX_ISA_DROPS[cap]
    return frozenset(f for f in flags if not f.startswith(drops))


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
