"""The communicator checks: each collective call, every rank's input (seeded by the case id
and the rank) and what each rank must hold afterwards, in float64, from all ranks' inputs.
collectives.py runs them across processes."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import torch

from sglang.ops.spec import case_name

DTYPES = (torch.float32, torch.bfloat16)


@dataclass(frozen=True)
class CollectiveCheck:
    """One collective call. `collective` is its capability key (`collective:<key>`)."""

    name: str  # "all_reduce", ...; the op is "comm.<name>"
    variant: str  # "sum", "dim1", "src1", ...
    collective: str
    # each rank's input; dim 0 is times WORLD_SIZE for reduce_scatter and an even all_to_all,
    # the sum of a2a_splits(rank) for an uneven one
    shape: tuple[int, ...]
    exact: bool = False

    @property
    def op(self) -> str:
        return f"comm.{self.name}"

    def case_id(self, dtype: torch.dtype) -> str:
        shape = "x".join(str(s) for s in self.shape)
        return f"{self.op}[{case_name(dtype, self.variant, shape)}]"


CHECKS = (
    CollectiveCheck("all_reduce", "sum", "all_reduce", (5, 7)),
    CollectiveCheck("all_reduce", "max", "all_reduce", (3, 11), exact=True),
    CollectiveCheck("all_gather", "dim0", "all_gather", (3, 5), exact=True),
    CollectiveCheck("all_gather", "dim1", "all_gather", (3, 5), exact=True),
    CollectiveCheck("reduce_scatter", "sum", "reduce_scatter", (3, 7)),
    CollectiveCheck("broadcast", "src0", "broadcast", (7, 3), exact=True),
    CollectiveCheck("broadcast", "src1", "broadcast", (7, 3), exact=True),
    CollectiveCheck("send_recv", "ring", "send_recv", (13,), exact=True),
    CollectiveCheck("all_to_all", "even", "all_to_all", (2, 5), exact=True),
    CollectiveCheck("all_to_all", "uneven", "all_to_all", (0, 5), exact=True),
)


def a2a_splits(rank: int, world: int) -> list[int]:
    """The rows rank `rank` sends to each rank in the uneven all_to_all check (0 included)."""
    return [(rank + 2 * i) % 3 for i in range(world)]


def cases() -> list[tuple[CollectiveCheck, torch.dtype]]:
    return [(check, dtype) for check in CHECKS for dtype in DTYPES]


# --- inputs, expected results and the collective call (run in every rank) ------------------
def rank_input(check: CollectiveCheck, dtype: torch.dtype, rank: int, world: int) -> torch.Tensor:
    shape = list(check.shape)
    if check.name == "reduce_scatter" or check.variant == "even":
        shape[0] *= world
    elif check.variant == "uneven":
        shape[0] = sum(a2a_splits(rank, world))
    gen = torch.Generator().manual_seed(zlib.crc32(f"{check.case_id(dtype)}/rank{rank}".encode()))
    return torch.randn(*shape, generator=gen, dtype=torch.float32).to(dtype)


def expected(check: CollectiveCheck, inputs: list[torch.Tensor], rank: int) -> torch.Tensor:
    """What `rank` must hold afterwards, in float64, from every rank's input."""
    world = len(inputs)
    xs = [x.to(torch.float64) for x in inputs]
    if check.name == "all_reduce":
        stacked = torch.stack(xs)
        return stacked.sum(0) if check.variant == "sum" else stacked.amax(0)
    if check.name == "all_gather":
        return torch.cat(xs, dim=int(check.variant[-1]))
    if check.name == "reduce_scatter":
        return torch.stack(xs).sum(0).chunk(world, dim=0)[rank]
    if check.name == "broadcast":
        return xs[int(check.variant.removeprefix("src"))]
    if check.name == "send_recv":
        return xs[(rank - 1) % world]
    if check.name == "all_to_all":
        splits = [
            a2a_splits(r, world) if check.variant == "uneven" else [x.shape[0] // world] * world
            for r, x in enumerate(xs)
        ]
        return torch.cat([x.split(splits[r])[rank] for r, x in enumerate(xs)])
    raise ValueError(f"unknown collective {check.name!r}")


def call(comm: Any, check: CollectiveCheck, x: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    if check.name == "all_reduce":
        return comm.all_reduce(x, op=check.variant)
    if check.name == "all_gather":
        return comm.all_gather(x, dim=int(check.variant[-1]))
    if check.name == "reduce_scatter":
        return comm.reduce_scatter(x, dim=0, op="sum")
    if check.name == "broadcast":
        return comm.broadcast(x, src=int(check.variant.removeprefix("src")))
    if check.name == "all_to_all":
        splits = a2a_splits(rank, world) if check.variant == "uneven" else None
        return comm.all_to_all(x, input_splits=splits)
    if check.name == "send_recv":
        # A ring: even ranks send first, odd ranks receive first, so blocking sends pair up.
        out = torch.empty_like(x)
        dst, src = (rank + 1) % world, (rank - 1) % world
        if rank % 2 == 0:
            comm.send(x, dst=dst)
            comm.recv(out, src=src)
        else:
            comm.recv(out, src=src)
            comm.send(x, dst=dst)
        return out
    raise ValueError(f"unknown collective {check.name!r}")
