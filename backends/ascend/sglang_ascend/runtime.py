"""The Ascend device runtime (thin): torch device "npu", memory, synchronisation, seeding.

torch-npu is imported here, when the runtime is created after the probe has matched its
version with torch's; it registers the "npu" device type and the `torch.npu` module.
Streams use the core's synchronous defaults and graph capture is off until validated.
"""

from __future__ import annotations

import importlib

import torch
from sglang.backend import DeviceRuntime


def npu_module():
    importlib.import_module("torch_npu")
    return torch.npu  # type: ignore[attr-defined]  # registered by torch_npu


class NpuRuntime(DeviceRuntime):
    def __init__(self, device_index: int = 0) -> None:
        self.npu = npu_module()
        super().__init__(torch.device("npu", device_index))
        self.device_index = device_index
        self.npu.set_device(self.device)

    def device_name(self) -> str:
        return self.npu.get_device_name(self.device_index)

    def memory_info(self) -> tuple[int, int]:
        free, total = self.npu.mem_get_info(self.device_index)
        return int(free), int(total)

    def synchronize(self) -> None:
        self.npu.synchronize()

    def manual_seed(self, seed: int) -> None:
        super().manual_seed(seed)
        self.npu.manual_seed_all(seed)
