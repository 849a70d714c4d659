"""Token embedding and the LM head (a linear layer against the vocabulary).

Under tensor parallelism both split the vocabulary (padded to a multiple of the ranks): rank r
holds rows [r * Vr, (r + 1) * Vr). The embedding looks up the ids that fall in its rows, zeroes
the others and all-reduces; the head computes its logit columns and all-gathers them (then
drops the padding). Tied weights stay tied: both hold the same rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sglang.layers.base import Layer
from sglang.layers.linear import Linear, tp_group
from sglang.layers.ops_table import OpTable
from sglang.parallel.sharding import split_part
from sglang.parallel.state import GroupInfo


def padded_vocab(vocab_size: int, tp_size: int) -> int:
    return -(-vocab_size // tp_size) * tp_size


def _pad_rows(tensor: torch.Tensor, rows: int) -> torch.Tensor:
    if tensor.shape[0] >= rows:
        return tensor
    return F.pad(tensor, (0, 0) * (tensor.dim() - 1) + (0, rows - tensor.shape[0]))


class VocabEmbedding(Layer):
    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
        ops: OpTable | None = None,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.tp = tp_group(ops) if ops is not None else GroupInfo()
        rows = padded_vocab(vocab_size, self.tp.size) // self.tp.size
        self.vocab_start = self.tp.rank * rows
        self.weight = nn.Parameter(
            torch.empty(rows, hidden_size, dtype=dtype, device=device), requires_grad=False
        )

    def load(self, tensor: torch.Tensor) -> None:
        """Copy this rank's rows of the checkpoint's [vocab, hidden] table in."""
        if self.tp.size > 1:
            padded = _pad_rows(tensor, padded_vocab(self.vocab_size, self.tp.size))
            tensor = split_part(padded, 0, self.tp.rank, self.tp.size, "embed_tokens.weight")
        if tensor.shape != self.weight.shape:
            raise ValueError(
                f"embedding: checkpoint shape {tuple(tensor.shape)} != {tuple(self.weight.shape)}"
            )
        self.weight.data.copy_(tensor)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.tp.size == 1:
            return F.embedding(input_ids, self.weight)
        local = input_ids - self.vocab_start
        outside = (local < 0) | (local >= self.weight.shape[0])
        out = F.embedding(local.masked_fill(outside, 0), self.weight)
        out.masked_fill_(outside.unsqueeze(-1), 0)
        return self.tp.comm.all_reduce(out)


class LMHead(Linear):
    """hidden [R, D] -> logits [R, V] in float32, with an optional final soft-cap (Gemma 2).
    A Linear without bias, so it is prepared (and int4-quantized) as the others are; when tied,
    the embedding keeps the float weight and the head's prepared copy is its own."""

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        ops: OpTable,
        final_softcap: float = 0.0,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> None:
        tp = tp_group(ops)
        super().__init__(
            hidden_size,
            padded_vocab(vocab_size, tp.size),
            ops,
            bias=False,
            dtype=dtype,
            device=device,
            parallel="column",
        )
        self.vocab_size = vocab_size
        self.final_softcap = final_softcap or 0.0

    def tie(self, embedding: VocabEmbedding) -> None:
        self.weight = embedding.weight

    def load(self, name: str, tensor: torch.Tensor, shard: str | None = None) -> None:
        if self.parallel is not None and name == "weight":
            tensor = _pad_rows(tensor, self.out_features * self.tp.size)
        super().load(name, tensor, shard)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = super().forward(hidden).float()
        if self.parallel is not None:
            logits = self.tp.comm.all_gather(logits, dim=-1)[..., : self.vocab_size]
        if self.final_softcap > 0:
            logits = torch.tanh(logits / self.final_softcap) * self.final_softcap
        return logits
