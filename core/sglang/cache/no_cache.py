"""NoPrefixCache: the prefix cache used with --disable-radix-cache; it never caches anything."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sglang.cache.base import MatchResult, PrefixCache
from sglang.cache.radix_cache import TreeNode
from sglang.mem.slot_allocator import KVSlotAllocator


class NoPrefixCache(PrefixCache):
    """match_prefix finds nothing, insert keeps nothing (returns 0: the caller frees all of its
    slots itself), evict frees nothing. The root node exists so lock calls need no branch."""

    stores_prefixes = False

    def __init__(self, allocator: KVSlotAllocator) -> None:
        self.allocator = allocator
        self.root = TreeNode()
        self.root.lock_ref = 1
        self._empty = torch.empty(0, dtype=torch.int64, device=allocator.device)

    def match_prefix(self, key: Sequence[int]) -> MatchResult:
        return MatchResult(self._empty, self.root)

    def insert(self, key: Sequence[int], value: torch.Tensor) -> int:
        return 0

    def inc_lock_ref(self, node: TreeNode) -> int:
        return 0

    def dec_lock_ref(self, node: TreeNode) -> int:
        return 0

    def evict(self, num_tokens: int) -> int:
        return 0

    def evictable_size(self) -> int:
        return 0

    def protected_size(self) -> int:
        return 0

    def reset(self) -> None:
        pass
