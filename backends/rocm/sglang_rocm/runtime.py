"""The ROCm device runtime (thin). A HIP build of torch exposes AMD GPUs through the
`torch.cuda` API with device type "cuda", so this runtime speaks that API.

Streams fall back to the core's synchronous defaults and graph capture is off until the HIP
graph path is validated on hardware; memory, synchronisation and seeding are real.
"""

from __future__ import annotations

import torch
from sglang.backend import DeviceRuntime


class RocmRuntime(DeviceRuntime):
    def __init__(self, device_index: int = 0) -> None:
        super().__init__(torch.device("cuda", device_index))
        self.device_index = device_index
        torch.cuda.set_device(self.device)

    def device_name(self) -> str:
        return torch.cuda.get_device_name(self.device)

    def memory_info(self) -> tuple[int, int]:
        free, total = torch.cuda.mem_get_info(self.device)
        return int(free), int(total)

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)

    def manual_seed(self, seed: int) -> None:
        super().manual_seed(seed)
        torch.cuda.manual_seed_all(seed)
