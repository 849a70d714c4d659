"""PrefixCache: the interface the scheduler uses to reuse KV of shared prompt prefixes.

Ownership of KV slots: slots returned by `match_prefix` belong to the cache; a request that
uses them locks the returned node (`inc_lock_ref`) until it finishes (`dec_lock_ref`), so they
are not evicted under it. `insert(key, value)` hands the request's slots to the cache: the
cache keeps `value[prefix_len:]`, where `prefix_len` is the return value, and the caller frees
its own duplicates in `value[:prefix_len]` (those it did not get from the cache). When
`stores_prefixes` is False the cache keeps nothing and the caller frees all of `value`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch

if TYPE_CHECKING:
    from sglang.cache.radix_cache import TreeNode


class MatchResult(NamedTuple):
    # KV slots of the longest cached prefix of the key: int64 [prefix_len].
    indices: torch.Tensor
    # The node where that prefix ends (the root when nothing matched); lock it to keep it.
    last_node: TreeNode


class PrefixCache(ABC):
    stores_prefixes: bool = True

    @abstractmethod
    def match_prefix(self, key: Sequence[int]) -> MatchResult:
        """The longest cached prefix of `key` (token ids) and its KV slots."""

    @abstractmethod
    def insert(self, key: Sequence[int], value: torch.Tensor) -> int:
        """Caches `key` with KV slots `value` (int64, len(key)); returns the length of the
        prefix that was already cached (see the module docstring for who frees what)."""

    @abstractmethod
    def inc_lock_ref(self, node: TreeNode) -> int:
        """Locks the path root..node against eviction; returns the tokens newly protected."""

    @abstractmethod
    def dec_lock_ref(self, node: TreeNode) -> int:
        """Undoes one inc_lock_ref(node); returns the tokens that became evictable again."""

    @abstractmethod
    def evict(self, num_tokens: int) -> int:
        """Frees at least `num_tokens` cached slots if it can; returns how many were freed."""

    @abstractmethod
    def evictable_size(self) -> int:
        """Cached tokens that no request locks."""

    @abstractmethod
    def protected_size(self) -> int:
        """Cached tokens locked by running requests."""

    def total_size(self) -> int:
        return self.evictable_size() + self.protected_size()

    @abstractmethod
    def reset(self) -> None:
        """Forgets everything cached without freeing slots (the caller clears the allocator)."""

    def check(self) -> None:
        """Raises RuntimeError when an internal invariant is broken (debug and tests)."""

    def pretty_print(self) -> str:
        """A readable dump of the cache, also printed."""
        text = f"{type(self).__name__}: empty"
        print(text)
        return text
