"""The ACME NPU as this package sees it: how to find one, and its runtime.

There is no ACME silicon: the "device" is an emulator that runs on the host CPU, so tensors
live in host memory (torch device "cpu"). A real vendor package looks for its driver's device
files here and reads its runtime library's version from metadata, never by importing it.
"""

from __future__ import annotations

import glob

from sglang.backend import CpuRuntime

DEVICE_GLOB = "/dev/acme[0-9]*"


def hardware_devices() -> list[str]:
    return sorted(glob.glob(DEVICE_GLOB))


class AcmeRuntime(CpuRuntime):
    """The emulator's runtime: synchronous (no streams), host memory, no graph capture.
    Everything not overridden keeps the core's defaults (see sglang.backend.runtime)."""

    def device_name(self) -> str:
        return f"ACME NPU {self.device_index} (emulated on {super().device_name()})"
