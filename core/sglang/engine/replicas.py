"""Data parallelism in the frontend: which replica takes a request, and one view of them all.

With `--dp-size N` the launcher starts N replicas (each a scheduler process, with its own
follower ranks when it is tensor-parallel) and the TokenizerManager holds one PUSH socket per
replica; every replica PUSHes its outputs to the frontend's one PULL socket. `LoadBalancer`
picks the replica of each new request by SGLang's `--load-balance-method` names:
`round_robin`, or `shortest_queue` (fewest requests in flight there, ties in round-robin
order so an idle server still spreads its requests). Aborts go to the request's replica;
controls go to every replica and their replies are merged (`merge_replies`).
"""

from __future__ import annotations

from typing import Any

from sglang.engine.io import ControlReply
from sglang.server_args import LOAD_BALANCE_METHODS


class LoadBalancer:
    def __init__(self, size: int, method: str = "round_robin") -> None:
        if method not in LOAD_BALANCE_METHODS:
            raise ValueError(f"--load-balance-method must be one of {LOAD_BALANCE_METHODS}")
        self.size, self.method = size, method
        self.in_flight = [0] * size  # requests sent and not finished, per replica
        self.requests = [0] * size  # requests sent since the start, per replica
        self.replica_of: dict[str, int] = {}
        self._next = 0

    def assign(self, rid: str) -> int:
        order = [(self._next + i) % self.size for i in range(self.size)]
        if self.method == "shortest_queue":
            replica = min(order, key=lambda r: self.in_flight[r])  # min keeps the first tie
        else:
            replica = order[0]
        self._next = (replica + 1) % self.size
        self.in_flight[replica] += 1
        self.requests[replica] += 1
        self.replica_of[rid] = replica
        return replica

    def release(self, rid: str) -> None:
        replica = self.replica_of.pop(rid, None)
        if replica is not None:
            self.in_flight[replica] -= 1

    def describe(self) -> dict[str, Any]:
        return {
            "dp_size": self.size,
            "load_balance_method": self.method,
            "requests": list(self.requests),
            "in_flight": list(self.in_flight),
        }


def merge_replies(kind: str, replies: list[ControlReply], balancer: LoadBalancer) -> ControlReply:
    """One reply for a control sent to every replica: ok when all are; `stats` summed over
    the replicas (kv_usage recomputed), each replica's own under "replicas" beside the
    frontend's counts under "dp"."""
    first = replies[0]
    if len(replies) == 1:
        return first
    failed = next((r for r in replies if not r.ok), None)
    if failed is not None:
        return ControlReply(first.id, False, failed.payload)
    if kind != "stats":
        return ControlReply(first.id, True, first.payload)
    payloads = [r.payload for r in replies]
    merged: dict[str, Any] = {}
    for key, value in payloads[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = sum(p.get(key, 0) for p in payloads)
    total = merged.get("kv_total", 0)
    if total:
        merged["kv_usage"] = 1 - merged.get("kv_free", 0) / total
    counts = balancer.describe()
    replicas = [
        {"replica": i, "requests": counts["requests"][i], "in_flight": counts["in_flight"][i], **p}
        for i, p in enumerate(payloads)
    ]
    return ControlReply(first.id, True, {**merged, "replicas": replicas, "dp": counts})
