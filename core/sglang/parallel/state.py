"""Process groups of one engine replica, built from the backend's communicator hook.

A replica of `tp_size * pp_size` ranks rendezvouses once through
`backend.create_communicator` (gloo on xeon, NCCL on cuda, ...: the core never names a
transport); its groups (tensor-parallel, pipeline stages) are sub-communicators of that world
(`Communicator.subgroup`). Rank r of the world is pipeline stage r // tp_size and TP rank
r % tp_size (SGLang's order: TP groups are neighbouring devices). Data-parallel replicas are
separate worlds: they exchange no tensors.

Expert parallelism shares the TP ranks (SGLang's rule: ep_size divides tp_size): TP rank t
holds the experts of EP rank t // (tp/ep) and, of each, the intermediate slice t % (tp/ep)
(`moe_tp`); the MoE layer's partial outputs are summed by one all-reduce over the TP group.

At size 1 nothing is created: `SINGLE` has no communicator, and the layers take their
single-device paths (no collective, no copy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupInfo:
    """This process's place in one group: its rank there, the group's size, and the
    communicator over it (None when the size is 1)."""

    rank: int = 0
    size: int = 1
    comm: Any = None


@dataclass(frozen=True)
class ParallelState:
    world: GroupInfo = field(default_factory=GroupInfo)
    tp: GroupInfo = field(default_factory=GroupInfo)
    pp: GroupInfo = field(default_factory=GroupInfo)
    ep: GroupInfo = field(default_factory=GroupInfo)  # which experts (comm: the TP group's)
    moe_tp: GroupInfo = field(default_factory=GroupInfo)  # which slice of each expert

    @property
    def is_leader(self) -> bool:
        """Rank 0 of the replica: the one that schedules and samples."""
        return self.world.rank == 0

    def describe(self) -> str:
        return (
            f"rank {self.world.rank}/{self.world.size}: tp rank {self.tp.rank}/{self.tp.size}, "
            f"pp stage {self.pp.rank}/{self.pp.size}"
            + (f", ep rank {self.ep.rank}/{self.ep.size}" if self.ep.size > 1 else "")
        )

    def close(self) -> None:
        if self.world.comm is not None:
            self.world.comm.close()


SINGLE = ParallelState()


def init_parallel(
    backend: Any,
    rank: int,
    tp_size: int,
    init_method: str,
    pp_size: int = 1,
    device_index: int = 0,
    ep_size: int = 1,
) -> ParallelState:
    """This rank's groups. `backend` is the selected LoadedBackend; `init_method` the
    torch.distributed rendezvous URL every rank of the replica uses."""
    world_size = tp_size * pp_size
    if tp_size % ep_size:
        raise ValueError(f"--ep-size {ep_size} must divide --tp-size {tp_size}")
    if world_size == 1:
        return SINGLE
    comm = backend.create_communicator(
        rank=rank, world_size=world_size, init_method=init_method, device_index=device_index
    )
    stage, tp_rank = divmod(rank, tp_size)
    world = GroupInfo(rank, world_size, comm)
    tp, pp = world, GroupInfo()
    if pp_size > 1:  # every rank makes every group, in one order (torch.distributed's rule)
        stages, columns = range(pp_size), range(tp_size)
        tp_groups = [comm.subgroup([s * tp_size + r for r in columns]) for s in stages]
        pp_groups = [comm.subgroup([s * tp_size + r for s in stages]) for r in columns]
        tp = GroupInfo(tp_rank, tp_size, tp_groups[stage] if tp_size > 1 else None)
        pp = GroupInfo(stage, pp_size, pp_groups[tp_rank])
    return ParallelState(world, tp, pp, *expert_groups(tp, ep_size))


def expert_groups(tp: GroupInfo, ep_size: int) -> tuple[GroupInfo, GroupInfo]:
    """(ep, moe_tp) of a TP rank: experts split over ep_size ranks, each over tp / ep_size."""
    moe_tp_size = tp.size // ep_size
    ep = GroupInfo(tp.rank // moe_tp_size, ep_size, tp.comm)
    return ep, GroupInfo(tp.rank % moe_tp_size, moe_tp_size, tp.comm)
