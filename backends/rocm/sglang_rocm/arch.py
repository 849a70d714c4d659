"""AMD GPU architectures this backend knows, and the one present, read without a device context.

The kernel driver publishes each GPU node's `gfx_target_version` (major*10000 + minor*100 +
stepping: 90402 is gfx942) under /sys/class/kfd/kfd/topology/nodes/*/properties, the file
amd-smi reads: no HIP runtime, no torch.cuda initialisation. CPU nodes report 0. The lowest
architecture among the GPUs wins: every rank must run every kernel.
"""

from __future__ import annotations

import glob
from typing import NamedTuple

KFD_NODES = "/sys/class/kfd/kfd/topology/nodes/*/properties"
KIB = 1 << 10


class Chip(NamedTuple):
    arch: str
    products: str
    lds_bytes: int  # local data share (shared memory) a workgroup may use
    fp8_formats: frozenset[str]  # what the matrix cores multiply natively
    wave_size: int = 64  # CDNA wavefronts are 64 lanes


CHIPS = {
    "gfx90a": Chip("gfx90a", "MI210/MI250X (CDNA2)", 64 * KIB, frozenset()),
    # CDNA3's fp8 is the FNUZ variant (one NaN, no -0, exponent bias 8), not OCP e4m3fn/e5m2.
    "gfx942": Chip(
        "gfx942", "MI300X/MI325X (CDNA3)", 64 * KIB, frozenset({"e4m3fnuz", "e5m2fnuz"})
    ),
    # CDNA4 multiplies OCP fp8 (and MXFP4/MXFP6) and has 160 KiB of LDS per CU.
    "gfx950": Chip("gfx950", "MI350X/MI355X (CDNA4)", 160 * KIB, frozenset({"e4m3fn", "e5m2"})),
}
DEFAULT_ARCH = "gfx942"  # what this backend targets when no GPU can be read


def gfx_name(target_version: int) -> str:
    """90402 -> gfx942, 90010 -> gfx90a (the stepping is a hex digit)."""
    major, minor, step = target_version // 10000, target_version // 100 % 100, target_version % 100
    return f"gfx{major}{minor}{step:x}"


def visible_archs(pattern: str = KFD_NODES) -> list[str]:
    found = []
    for path in sorted(glob.glob(pattern)):
        try:
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "gfx_target_version" and int(value) > 0:
                        found.append(gfx_name(int(value)))
        except (OSError, ValueError):
            continue
    return found


def chip(arch: str | None) -> Chip:
    """The known chip for `arch` (the default target for None or an unknown architecture)."""
    return CHIPS.get(arch or DEFAULT_ARCH, CHIPS[DEFAULT_ARCH])


def present_arch() -> str | None:
    """The lowest known architecture among the visible GPUs, or None when none can be read."""
    archs = [a for a in visible_archs() if a in CHIPS]
    return min(archs, key=list(CHIPS).index) if archs else None
