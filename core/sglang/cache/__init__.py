"""Prefix caches: which KV slots already hold a token sequence, so requests can share them."""

from sglang.cache.base import MatchResult, PrefixCache
from sglang.cache.no_cache import NoPrefixCache
from sglang.cache.radix_cache import RadixCache, TreeNode

__all__ = ["MatchResult", "NoPrefixCache", "PrefixCache", "RadixCache", "TreeNode"]
