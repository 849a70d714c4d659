"""Token embedding and the LM head (a linear layer against the vocabulary)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sglang.layers.base import Layer
from sglang.layers.linear import Linear
from sglang.layers.ops_table import OpTable


class VocabEmbedding(Layer):
    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(
            torch.empty(vocab_size, hidden_size, dtype=dtype, device=device), requires_grad=False
        )

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(input_ids, self.weight)


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
        super().__init__(hidden_size, vocab_size, ops, bias=False, dtype=dtype, device=device)
        self.final_softcap = final_softcap or 0.0

    def tie(self, embedding: VocabEmbedding) -> None:
        self.weight = embedding.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = super().forward(hidden).float()
        if self.final_softcap > 0:
            logits = torch.tanh(logits / self.final_softcap) * self.final_softcap
        return logits
