"""Can the ascend backend run here? Answered from metadata and device files alone.

torch-npu pins one torch release exactly (torch-npu 2.14.0 pins torch 2.14.0) and importing it
against another torch fails, so the probe compares versions from metadata and never imports
it. NPUs show themselves as /dev/davinci<N> device files.
"""

from __future__ import annotations

import glob
import importlib.metadata as md
import re

import torch
from sglang.backend import ProbeResult

DISTRIBUTION = "torch-npu"


def release(version: str) -> str:
    """The X.Y.Z release of a version: 2.14.0+cpu -> 2.14.0, 2.1.0.post6 -> 2.1.0, 2.9 -> 2.9.0."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if m is None:
        return version
    return f"{m.group(1)}.{m.group(2)}.{m.group(3) or 0}"


def torch_npu_version() -> str | None:
    try:
        return md.version(DISTRIBUTION)
    except md.PackageNotFoundError:
        return None


def pinned_torch(npu_version: str) -> str:
    """The torch release a torch-npu release needs: its `torch==X` requirement when the
    metadata states one, else its own release number (the project's versioning rule)."""
    for req in md.requires(DISTRIBUTION) or []:
        m = re.match(r"torch\s*==\s*([0-9][^;,\s]*)", req)
        if m is not None:
            return release(m.group(1))
    return release(npu_version)


def npu_devices() -> list[str]:
    return sorted(glob.glob("/dev/davinci[0-9]*"))


def probe() -> ProbeResult:
    npu = torch_npu_version()
    devices = npu_devices()
    details = {"torch": torch.__version__, "torch_npu": npu, "device_count": len(devices)}
    reasons = []
    if npu is None:
        reasons.append("torch-npu is not installed (pip install sglang[ascend] on an Ascend host)")
    elif pinned_torch(npu) != release(torch.__version__):
        reasons.append(
            f"torch-npu {npu} pins torch {pinned_torch(npu)}, found torch {torch.__version__}"
        )
    if not devices:
        reasons.append("no Ascend NPU (no /dev/davinci<N> device files)")
    if reasons:
        return ProbeResult.unavailable(*reasons, **details)
    return ProbeResult.ok(f"{len(devices)} Ascend NPU(s), torch-npu {npu}", **details)
