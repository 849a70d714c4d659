"""Can the rocm backend run here? Answered cheaply, without initialising a device.

Order: the torch build (only a ROCm build of torch drives AMD GPUs: `torch.version.hip`), the
driver's footprint (/dev/kfd and a /dev/dri render node), then `torch.cuda.device_count()`,
which on a HIP build counts AMD GPUs. amd-aiter is looked up in metadata only: imported where
ROCm is absent it raises ("ROCm version file not found"), so the probe never imports it.
"""

from __future__ import annotations

import os

import torch
from sglang.backend import ProbeResult
from sglang.backend.plugin_kit import counted_devices_probe, device_files, installed_version


def aiter_version() -> str | None:
    """The installed amd-aiter's version (never the unrelated PyPI package `aiter`)."""
    return installed_version("amd-aiter")


def driver_present() -> bool:
    return os.path.exists("/dev/kfd") and bool(device_files("/dev/dri/renderD*"))


def probe() -> ProbeResult:
    aiter = aiter_version()
    hip = getattr(torch.version, "hip", None)
    details = {"torch": torch.__version__, "hip": hip, "amd_aiter": aiter}
    reasons = []
    if hip is None:
        reasons.append(f"torch {torch.__version__} is not a ROCm build (torch.version.hip is None)")
    if not driver_present():
        reasons.append("no AMD GPU (no /dev/kfd with a /dev/dri/renderD* node)")
    notes = [
        f"torch {torch.__version__} with HIP {hip}",
        f"amd-aiter {aiter}" if aiter else "amd-aiter not installed",
    ]
    return counted_devices_probe(
        reasons, details, torch.cuda.device_count, "AMD GPU", "HIP_VISIBLE_DEVICES", notes
    )
