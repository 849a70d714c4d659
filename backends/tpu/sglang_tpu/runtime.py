"""The TPU device runtime (thin).

With torch-xla, tensors live on the "xla" device and `synchronize` cuts the lazy graph
(`mark_step`) and waits for it. Without it (JAX alone), torch tensors stay in host memory and
each JAX kernel moves its operands to the TPU by DLPack, so the host runtime applies.
"""

from __future__ import annotations

import importlib

from sglang.backend import CpuRuntime, DeviceRuntime


class XlaRuntime(DeviceRuntime):
    def __init__(self, device_index: int = 0) -> None:
        self.xm = importlib.import_module("torch_xla.core.xla_model")
        super().__init__(self.xm.xla_device())
        self.device_index = device_index

    def memory_info(self) -> tuple[int, int]:
        info = self.xm.get_memory_info(self.device)
        if "bytes_limit" in info:  # newer torch-xla
            return int(info["bytes_limit"] - info["bytes_used"]), int(info["bytes_limit"])
        return int(info["kb_free"]) * 1024, int(info["kb_total"]) * 1024

    def synchronize(self) -> None:
        self.xm.mark_step()
        self.xm.wait_device_ops()

    def manual_seed(self, seed: int) -> None:
        super().manual_seed(seed)
        self.xm.set_rng_state(seed, device=self.device)


def create_runtime(use_xla: bool, device_index: int) -> DeviceRuntime:
    return XlaRuntime(device_index) if use_xla else CpuRuntime(device_index)
