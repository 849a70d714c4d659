"""Parallel serving: who holds what (ParallelState), how checkpoint tensors split over ranks
(sharding), and how rank 0's batch plan reaches the other ranks (plan)."""

from sglang.parallel.state import SINGLE, GroupInfo, ParallelState, init_parallel

__all__ = ["SINGLE", "GroupInfo", "ParallelState", "init_parallel"]
