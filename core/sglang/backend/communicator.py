"""Communicator: collectives between ranks, supplied by the backend.

`Communicator` is the interface the core's tensor-parallel layers call. torch.distributed is
device-neutral, so the core carries one implementation over a process group whose transport
the backend names ("gloo" on CPU, "nccl" on NVIDIA, "hccl" on Ascend, ...).
"""

from __future__ import annotations

import abc
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

REDUCE_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}


class Communicator(abc.ABC):
    rank: int
    world_size: int

    @abc.abstractmethod
    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Reduce `tensor` across ranks in place and return it."""

    @abc.abstractmethod
    def all_gather(self, tensor: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Concatenate every rank's `tensor` along `dim` (rank order)."""

    @abc.abstractmethod
    def reduce_scatter(self, tensor: torch.Tensor, dim: int = 0, op: str = "sum") -> torch.Tensor:
        """Reduce across ranks, then return this rank's 1/world_size slice along `dim`."""

    @abc.abstractmethod
    def broadcast(self, tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
        """Overwrite `tensor` in place with rank `src`'s and return it."""

    @abc.abstractmethod
    def send(self, tensor: torch.Tensor, dst: int) -> None: ...

    @abc.abstractmethod
    def recv(self, tensor: torch.Tensor, src: int) -> torch.Tensor: ...

    def all_to_all(
        self, tensor: torch.Tensor, input_splits: list[int] | None = None
    ) -> torch.Tensor:
        """Send rows `input_splits[i]` of `tensor` (dim 0, in order; None: world_size equal
        parts) to rank i and return the rows received, concatenated in rank order. Optional
        (capability `collective:all_to_all`): token-sharded expert dispatch needs it."""
        raise NotImplementedError(f"{type(self).__name__} has no all_to_all")

    def barrier(self) -> None:
        pass

    def subgroup(self, ranks: list[int]) -> Communicator:
        """A communicator over `ranks` (ranks of this one), whose ranks are numbered by their
        position in `ranks`. Every rank calls it, for every subgroup, in the same order."""
        raise NotImplementedError(f"{type(self).__name__} has no subgroups")

    def close(self) -> None:
        pass


class ProcessGroupCommunicator(Communicator):
    """Collectives over a torch.distributed process group with the given transport."""

    def __init__(
        self,
        transport: str,
        rank: int,
        world_size: int,
        init_method: str,
        timeout_s: float = 120.0,
    ) -> None:
        self.transport = transport
        self.rank = rank
        self.world_size = world_size
        if not dist.is_initialized():
            # torch.distributed.nn's functions take `group=group.WORLD` as a default argument,
            # evaluated at its import: imported after this group exists (transformers imports
            # it while a model loads), they would hold the group for good and `close` could
            # not join its threads. Imported first, their default is None.
            import torch.distributed.nn  # noqa: F401

            dist.init_process_group(
                transport,
                init_method=init_method,
                rank=rank,
                world_size=world_size,
                timeout=timedelta(seconds=timeout_s),
            )
        self.group = dist.group.WORLD
        self.subgroups: list[ProcessGroupCommunicator] = []

    @classmethod
    def over_group(cls, transport: str, group: Any, rank: int, world_size: int):
        """A communicator over an existing process group (made by `subgroup`)."""
        self = cls.__new__(cls)
        self.transport, self.group, self.rank, self.world_size = transport, group, rank, world_size
        self.subgroups = []
        return self

    def subgroup(self, ranks: list[int]) -> Communicator:
        group = dist.new_group(ranks, backend=self.transport)
        mine = ranks.index(self.rank) if self.rank in ranks else -1
        sub = ProcessGroupCommunicator.over_group(self.transport, group, mine, len(ranks))
        self.subgroups.append(sub)
        return sub

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        if self.world_size == 1:
            return tensor
        dist.all_reduce(tensor, op=REDUCE_OPS[op], group=self.group)
        return tensor

    def all_gather(self, tensor: torch.Tensor, dim: int = 0) -> torch.Tensor:
        if self.world_size == 1:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor.contiguous(), group=self.group)
        return torch.cat(parts, dim=dim)

    def reduce_scatter(self, tensor: torch.Tensor, dim: int = 0, op: str = "sum") -> torch.Tensor:
        if self.world_size == 1:
            return tensor
        if tensor.shape[dim] % self.world_size:
            raise ValueError(
                f"reduce_scatter: size {tensor.shape[dim]} along dim {dim} is not divisible "
                f"by world size {self.world_size}"
            )
        # gloo has no reduce_scatter; an all_reduce and a slice is exact and portable.
        reduced = tensor.clone()
        dist.all_reduce(reduced, op=REDUCE_OPS[op], group=self.group)
        return reduced.chunk(self.world_size, dim=dim)[self.rank].contiguous()

    def all_to_all(
        self, tensor: torch.Tensor, input_splits: list[int] | None = None
    ) -> torch.Tensor:
        if self.world_size == 1:
            return tensor
        tensor = tensor.contiguous()
        if input_splits is None:
            if tensor.shape[0] % self.world_size:
                raise ValueError(
                    f"all_to_all: size {tensor.shape[0]} along dim 0 is not divisible by world "
                    f"size {self.world_size}"
                )
            out = torch.empty_like(tensor)
            dist.all_to_all_single(out, tensor, group=self.group)
            return out
        # The receivers' sizes: one small exchange of the split sizes first.
        sizes = torch.tensor(input_splits, dtype=torch.int64, device=tensor.device)
        received = torch.empty_like(sizes)
        dist.all_to_all_single(received, sizes, group=self.group)
        output_splits = received.tolist()
        out = tensor.new_empty((sum(output_splits), *tensor.shape[1:]))
        dist.all_to_all_single(out, tensor, output_splits, list(input_splits), group=self.group)
        return out

    def broadcast(self, tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
        if self.world_size > 1:
            dist.broadcast(tensor, group=self.group, group_src=src)
        return tensor

    def send(self, tensor: torch.Tensor, dst: int) -> None:
        dist.send(tensor.contiguous(), group=self.group, group_dst=dst)

    def recv(self, tensor: torch.Tensor, src: int) -> torch.Tensor:
        dist.recv(tensor, group=self.group, group_src=src)
        return tensor

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier(group=self.group)

    def close(self) -> None:
        """Destroy the process group and drop this object's references to it and to its
        subgroups, so that their worker threads are joined here, not at interpreter exit.

        Why the references matter: a gloo worker thread drops the tensors of a finished
        collective after the caller has been told it finished. If the last Python reference
        to such a tensor went meanwhile, the drop needs the GIL; at interpreter exit it cannot
        have it, and the process aborts ("terminate called without an active exception")
        after all its work is done. Destroying the last reference to a process group joins its
        threads (torch releases the GIL for that), so nothing is left pending at exit."""
        if dist.is_initialized() and self.group is dist.group.WORLD:
            dist.destroy_process_group()
        for sub in self.subgroups:
            sub.close()
        self.subgroups = []
        self.group = None
