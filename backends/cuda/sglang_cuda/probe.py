"""Can the cuda backend run here? Answered cheaply, without initialising a device.

Order: the torch build (a CPU or ROCm build cannot drive NVIDIA GPUs), then the driver's
footprint (/dev/nvidia* device files, /proc/driver/nvidia), and only then, for a CUDA build with
a driver present, `torch.cuda.device_count()`, which asks the driver (or NVML) for a count and
creates no CUDA context. Triton's presence is read with `importlib.util.find_spec` and its
version from metadata: it is never imported here.
"""

from __future__ import annotations

import torch
from sglang.backend import ProbeResult
from sglang.backend.plugin_kit import counted_devices_probe, device_files, installed_version


def torch_build_problem() -> str | None:
    """Why this torch cannot drive NVIDIA GPUs, or None when it is a CUDA build."""
    if torch.version.cuda is not None:
        return None
    hip = getattr(torch.version, "hip", None)
    if hip is not None:
        return f"torch {torch.__version__} is a ROCm build (HIP {hip}); use the rocm backend"
    return f"torch {torch.__version__} is a CPU build (torch.version.cuda is None)"


def driver_present() -> bool:
    """True when the NVIDIA kernel driver shows itself: device files or its /proc entry."""
    return bool(device_files("/dev/nvidia[0-9]*", "/proc/driver/nvidia/version"))


def triton_version() -> str | None:
    """The installed triton's version, from metadata; None when it is not installed."""
    return installed_version("triton", module="triton")


def probe() -> ProbeResult:
    triton = triton_version()
    details = {"torch": torch.__version__, "cuda": torch.version.cuda, "triton": triton}
    reasons = []
    build = torch_build_problem()
    if build is not None:
        reasons.append(build)
    if not driver_present():
        reasons.append("no NVIDIA device (no /dev/nvidia* device files, no /proc/driver/nvidia)")
    notes = [
        f"torch {torch.__version__} with CUDA {torch.version.cuda}",
        f"triton {triton}" if triton else "triton not installed",
    ]
    return counted_devices_probe(
        reasons,
        details,
        torch.cuda.device_count,
        "NVIDIA device",
        "CUDA_VISIBLE_DEVICES",
        notes,
        count_call="torch.cuda.device_count()",
    )
