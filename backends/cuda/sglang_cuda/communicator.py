"""The NCCL communicator: the core's process-group communicator over the "nccl" transport,
with this rank's GPU made current first (NCCL binds each communicator to one device)."""

from __future__ import annotations

import torch
from sglang.backend import ProcessGroupCommunicator


class NcclCommunicator(ProcessGroupCommunicator):
    def __init__(self, rank: int, world_size: int, init_method: str, device_index: int) -> None:
        count = torch.cuda.device_count()
        if device_index >= count:
            raise RuntimeError(
                f"rank {rank} asks for GPU {device_index} but {count} are visible: NCCL needs "
                "one GPU per rank"
            )
        torch.cuda.set_device(device_index)
        super().__init__("nccl", rank, world_size, init_method)
