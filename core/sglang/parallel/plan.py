"""Rank 0 decides, the others follow: the batch plan of every forward, broadcast.

Only rank 0 of a replica runs the scheduler (admission, the prefix cache, slot allocation,
sampling). Before each forward it broadcasts the ForwardBatch's index tensors through the
communicator: a fixed-size header (mode, batch size, each field's length and dtype), then
the fields concatenated as one int64 tensor. The other ranks run `follow`: receive a plan,
run the same forward on their shard of the model and of the KV cache (their pools mirror rank
0's: same slot count, and the slots come from rank 0), and throw the logits away. A header
with mode 0 ends the loop. Two broadcasts a step, on the device's stream (no host sync on
rank 0); nothing of this exists at size 1.
"""

from __future__ import annotations

import torch

from sglang.forward_batch import ForwardBatch, ForwardMode

FIELDS = (
    "input_ids",
    "positions",
    "out_cache_loc",
    "qo_indptr",
    "kv_indptr",
    "kv_indices",
    "logits_indices",
)
DTYPES = (torch.int32, torch.int64)
STOP = 0
HEADER = 2 + 2 * len(FIELDS)  # mode, batch size, then (length, dtype code) per field


class PlanSender:
    """Rank 0's side: `send(batch)` before its own forward, `stop()` at shutdown."""

    def __init__(self, comm, device: torch.device) -> None:
        self.comm, self.device = comm, device

    def send(self, batch: ForwardBatch) -> None:
        fields = [getattr(batch, name) for name in FIELDS]
        header = [int(batch.mode), batch.batch_size]
        for t in fields:
            header += [t.numel(), DTYPES.index(t.dtype)]
        self.comm.broadcast(torch.tensor(header, dtype=torch.int64, device=self.device), src=0)
        payload = torch.cat([t.reshape(-1).to(torch.int64) for t in fields])
        self.comm.broadcast(payload, src=0)

    def stop(self) -> None:
        header = torch.zeros(HEADER, dtype=torch.int64, device=self.device)
        self.comm.broadcast(header, src=0)


def receive(comm, device: torch.device, kv_cache) -> ForwardBatch | None:
    """The next plan from rank 0 (None: stop)."""
    header = torch.empty(HEADER, dtype=torch.int64, device=device)
    values = comm.broadcast(header, src=0).tolist()
    if values[0] == STOP:
        return None
    lengths, codes = values[2::2], values[3::2]
    payload = torch.empty(sum(lengths), dtype=torch.int64, device=device)
    comm.broadcast(payload, src=0)
    parts = [p.to(DTYPES[c]) for p, c in zip(payload.split(lengths), codes)]
    return ForwardBatch(ForwardMode(values[0]), values[1], *parts, kv_cache=kv_cache)


def follow(runner) -> int:
    """Run rank 0's forwards until it stops; returns how many ran."""
    comm = runner.parallel.world.comm
    steps = 0
    while True:
        batch = receive(comm, runner.device, runner.kv_cache)
        if batch is None:
            return steps
        runner.forward(batch)
        steps += 1
