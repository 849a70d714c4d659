"""Paged KV batches for the attention and KV op cases: where each sequence's tokens live.

The KV cache is a flat pool of S slots, `k_cache[S, Hkv, D]` and `v_cache[S, Hkv, Dv]`.
A batch names its sequences' slots with CSR arrays, in position order:

    kv_indptr  [B+1] int32   sequence b owns kv_indices[kv_indptr[b]:kv_indptr[b+1]]
    kv_indices [sum L] int64 slot of each token, position 0 first

    pages (page_size p):  | 0 (reserved) | page 1 | page 2 | ... |
    seq 0: page 5 then page 2, seq 1: page 7 ...  slots p*page .. p*page+p-1 inside a page

Slot 0 (page 0 as a whole when p > 1) is the padding slot: it is never a real destination, so
kernels may point padding at it. Generated batches take whole pages in a random order, so a
sequence's slots are contiguous within a page and scattered across pages; with p == 1 every
slot is scattered. Unused slots hold random data, which a kernel must never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PagedBatch:
    kv_indptr: torch.Tensor  # [B+1] int32
    kv_indices: torch.Tensor  # [sum L] int64
    num_slots: int  # S, slot 0 included


def indptr(lengths: Sequence[int]) -> torch.Tensor:
    """[B+1] int32 prefix sums of `lengths`, starting at 0."""
    out = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    if lengths:
        out[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.int64), 0).to(torch.int32)
    return out


def allocate_slots(
    gen: torch.Generator, lengths: Sequence[int], page_size: int = 1, spare_pages: int = 3
) -> PagedBatch:
    """Slots for sequences of the given lengths: whole pages of `page_size` slots, page 0
    reserved, `spare_pages` pages left unused, pages handed out in a random order."""
    pages_per_seq = [-(-n // page_size) for n in lengths]
    num_pages = 1 + sum(pages_per_seq) + spare_pages
    order = (torch.randperm(num_pages - 1, generator=gen) + 1).tolist()
    indices, start = [], 0
    for n, pages in zip(lengths, pages_per_seq):
        seq_pages = order[start : start + pages]
        start += pages
        slots = [page * page_size + i for page in seq_pages for i in range(page_size)]
        indices.extend(slots[:n])
    return PagedBatch(
        kv_indptr=indptr(lengths),
        kv_indices=torch.tensor(indices, dtype=torch.int64),
        num_slots=num_pages * page_size,
    )
