"""Pipeline parallelism: which layers a stage holds, and what passes between stages.

Stage s of `pp` holds a contiguous range of the decoder layers (`stage_layers`: the remainder
of an uneven split goes to the first stages), the embedding on the first stage and the final
norm and LM head on the last (a tied head keeps the embedding there too). A layer another
stage holds is a `MissingLayer` (no parameters, the checkpoint's tensors for it are skipped),
so parameter names stay the checkpoint's.

One forward, every rank running the same broadcast plan (sglang.parallel.plan): stage s > 0
receives the hidden states and the residual ([2, T, D], one message) from stage s - 1 over
its pipeline group (the ranks of its TP rank across the stages: `Communicator.send`/`recv`),
runs its layers and sends them on; the last stage computes the logits and its TP rank 0
sends them back to rank 0 (stage 0, TP rank 0), which samples.

Micro-batches (`run_pipelined`): every rank cuts the forward's batch the same way, by
requests, into up to pp_size micro-batches (`micro_batches`), and runs them in order; stage s
works on micro-batch m + 1 while stage s + 1 works on m. The last stage sends all their logits
in one message at the end (a send per micro-batch to rank 0, busy sending the next one's
activations, could deadlock on a blocking transport). The scheduler still plans one batch per
step: batches of consecutive steps do not overlap (a decode step needs the previous one's
tokens), so a batch of one request runs through the stages with no overlap. Graph capture is
off under PP (a capture would hold the transfers).
"""

from __future__ import annotations

import torch
from torch import nn

from sglang.forward_batch import ForwardBatch
from sglang.parallel.state import GroupInfo


def stage_layers(num_layers: int, stage: int, stages: int) -> range:
    """The decoder layers stage `stage` of `stages` holds."""
    if num_layers < stages:
        raise ValueError(
            f"--pp-size {stages}: the model has {num_layers} layers, fewer than the stages"
        )
    base, extra = divmod(num_layers, stages)
    start = stage * base + min(stage, extra)
    return range(start, start + base + (stage < extra))


class MissingLayer(nn.Module):
    """A decoder layer held by another pipeline stage."""

    def forward(self, *args, **kwargs):
        raise RuntimeError("this decoder layer lives on another pipeline stage")


class Stage:
    """This rank's place in the pipeline, for a model's forward."""

    def __init__(self, pp: GroupInfo, num_layers: int) -> None:
        self.pp = pp
        self.layers = stage_layers(num_layers, pp.rank, pp.size)
        self.is_first = pp.rank == 0
        self.is_last = pp.rank == pp.size - 1

    def holds(self, layer: int) -> bool:
        return layer in self.layers

    def receive(self, tokens: int, hidden_size: int, dtype, device) -> tuple:
        """(hidden, residual) from the previous stage."""
        buf = torch.empty((2, tokens, hidden_size), dtype=dtype, device=device)
        self.pp.comm.recv(buf, src=self.pp.rank - 1)
        return buf[0], buf[1]

    def send(self, hidden: torch.Tensor, residual: torch.Tensor) -> None:
        self.pp.comm.send(torch.stack((hidden, residual)), dst=self.pp.rank + 1)


def skipped_weight(name: str, stage: Stage | None, has_embedding: bool) -> bool:
    """Whether checkpoint tensor `name` belongs to another stage (Hugging Face names)."""
    if stage is None:
        return False
    if name.startswith("model.layers."):
        layer = name.split(".", 3)[2]
        return layer.isdigit() and not stage.holds(int(layer))
    if name.startswith("model.embed_tokens."):
        return not has_embedding
    if name.startswith(("model.norm.", "lm_head.")):
        return not stage.is_last
    return False


def relay_logits(
    pp: GroupInfo, tp_rank: int, logits: torch.Tensor | None, rows: int, vocab: int, device
) -> torch.Tensor | None:
    """After a forward: the last stage's TP rank 0 sends its logits to stage 0, whose TP rank 0
    (the scheduler) returns them; every other rank returns what it has (None or unused)."""
    if tp_rank != 0 or pp.size == 1:
        return logits
    if pp.rank == pp.size - 1:
        pp.comm.send(logits, dst=0)
        return logits
    if pp.rank == 0:
        out = torch.empty((rows, vocab), dtype=torch.float32, device=device)
        return pp.comm.recv(out, src=pp.size - 1)
    return logits


def micro_batches(
    batch: ForwardBatch, parts: int
) -> tuple[list[ForwardBatch], torch.Tensor | None]:
    """`batch` cut by requests into up to `parts` batches, and where each logits row of theirs
    (concatenated) goes among the whole batch's (None: in order)."""
    size = batch.batch_size
    parts = min(parts, size)
    if parts <= 1:
        return [batch], None
    qo, kv = batch.qo_indptr.tolist(), batch.kv_indptr.tolist()
    rows, bounds = batch.logits_indices, [i * size // parts for i in range(parts + 1)]
    out, order = [], []
    for a, b in zip(bounds, bounds[1:]):
        (t0, t1), (k0, k1) = (qo[a], qo[b]), (kv[a], kv[b])
        mine = ((rows >= t0) & (rows < t1)).nonzero().flatten()
        order.append(mine)
        out.append(
            ForwardBatch(
                batch.mode,
                b - a,
                batch.input_ids[t0:t1],
                batch.positions[t0:t1],
                batch.out_cache_loc[t0:t1],
                batch.qo_indptr[a : b + 1] - t0,
                batch.kv_indptr[a : b + 1] - k0,
                batch.kv_indices[k0:k1],
                rows[mine] - t0,
                batch.kv_cache,
            )
        )
    return out, torch.cat(order)


def run_pipelined(model, batch: ForwardBatch, parallel, vocab: int) -> torch.Tensor | None:
    """One forward of this stage over the batch's micro-batches; rank 0 returns the logits
    [len(batch.logits_indices), vocab] in the batch's order."""
    pp, device = parallel.pp, batch.input_ids.device
    parts, order = micro_batches(batch, pp.size)
    outs = [model(part) for part in parts]
    logits = torch.cat(outs) if outs[0] is not None else None
    rows = batch.logits_indices.shape[0]
    logits = relay_logits(pp, parallel.tp.rank, logits, rows, vocab, device)
    if logits is None or order is None:
        return logits
    return torch.empty_like(logits).index_copy_(0, order, logits)
