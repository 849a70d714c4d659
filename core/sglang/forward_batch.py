"""ForwardBatch: everything one forward pass needs, built by the scheduler per step.

Token-major layout. For a batch of B sequences with N new tokens in all:

    input_ids, positions, out_cache_loc   [N]     new tokens, their positions, their KV slots
    qo_indptr                             [B+1]   new tokens of sequence b: qo_indptr[b]:qo_indptr[b+1]
    kv_indptr                             [B+1]   all KV of sequence b (cached prefix + new):
    kv_indices                            [sum L]     kv_indices[kv_indptr[b]:kv_indptr[b+1]]
    logits_indices                        [R]     rows of the hidden states to compute logits for
                                                  (the last token of each sequence, or every
                                                  prompt token when prompt logprobs are wanted)

In DECODE mode every sequence has exactly one new token (qo_indptr = arange(B+1)).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import torch

from sglang.mem.kv_cache import KVCache


class ForwardMode(enum.IntEnum):
    EXTEND = 1  # prefill of new tokens, possibly after a cached prefix
    DECODE = 2  # one new token per sequence


@dataclass
class ForwardBatch:
    mode: ForwardMode
    batch_size: int
    input_ids: torch.Tensor
    positions: torch.Tensor
    out_cache_loc: torch.Tensor
    qo_indptr: torch.Tensor
    kv_indptr: torch.Tensor
    kv_indices: torch.Tensor
    logits_indices: torch.Tensor
    kv_cache: KVCache

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.shape[0])
