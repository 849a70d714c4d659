"""Can the rocm backend run here? Answered cheaply, without initialising a device.

Order: the torch build (only a ROCm build of torch drives AMD GPUs: `torch.version.hip`), the
driver's footprint (/dev/kfd and a /dev/dri render node), then `torch.cuda.device_count()`,
which on a HIP build counts AMD GPUs. amd-aiter is looked up in metadata only: imported where
ROCm is absent it raises ("ROCm version file not found"), so the probe never imports it.
"""

from __future__ import annotations

import glob
import importlib.metadata as md
import os

import torch
from sglang.backend import ProbeResult


def aiter_version() -> str | None:
    """The installed amd-aiter's version (never the unrelated PyPI package `aiter`)."""
    try:
        return md.version("amd-aiter")
    except md.PackageNotFoundError:
        return None


def driver_present() -> bool:
    return os.path.exists("/dev/kfd") and bool(glob.glob("/dev/dri/renderD*"))


def probe() -> ProbeResult:
    aiter = aiter_version()
    hip = getattr(torch.version, "hip", None)
    details = {"torch": torch.__version__, "hip": hip, "amd_aiter": aiter}
    reasons = []
    if hip is None:
        reasons.append(f"torch {torch.__version__} is not a ROCm build (torch.version.hip is None)")
    if not driver_present():
        reasons.append("no AMD GPU (no /dev/kfd with a /dev/dri/renderD* node)")
    if reasons:
        return ProbeResult.unavailable(*reasons, **details)
    count = torch.cuda.device_count()
    details["device_count"] = count
    if count == 0:
        return ProbeResult.unavailable(
            "no AMD GPU visible to torch (device count 0; "
            f"HIP_VISIBLE_DEVICES={os.environ.get('HIP_VISIBLE_DEVICES', '<unset>')})",
            **details,
        )
    notes = [
        f"{count} AMD GPU(s)",
        f"torch {torch.__version__} with HIP {hip}",
        f"amd-aiter {aiter}" if aiter else "amd-aiter not installed",
    ]
    return ProbeResult.ok(", ".join(notes), **details)
