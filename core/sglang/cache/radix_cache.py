"""RadixCache: SGLang's RadixAttention prefix tree over token ids, holding KV slot indices.

Each edge (stored on its child node) carries a run of token ids `key` and the KV slots
`value` of those tokens, so a root-to-node path spells a cached sequence and the
concatenation of its values is that sequence's KV. Children are keyed by their first token.

Invariants (`check()` verifies them):
- the root has an empty key, lock_ref 1 forever, and is never evicted;
- every other node: len(value) == len(key) > 0, children[key[0]] is the child, lock_ref >= 0;
- a node's lock_ref = its direct locks + the sum of its children's lock_refs (a lock on a
  node is a lock on its whole path to the root);
- evictable_size = tokens on nodes with lock_ref 0, protected_size = tokens on locked nodes;
- no KV slot appears twice in the tree, and slot 0 (padding) never does.

Access times are a logical clock (one tick per match/insert), so LRU order is exact.
Page size 1 only: keys are token-granular.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence

import torch

from sglang.cache.base import MatchResult, PrefixCache
from sglang.mem.slot_allocator import KVSlotAllocator

_node_ids = itertools.count()


class TreeNode:
    def __init__(self, key: list[int] | None = None, value: torch.Tensor | None = None) -> None:
        self.children: dict[int, TreeNode] = {}
        self.parent: TreeNode | None = None
        self.key: list[int] = key if key is not None else []
        self.value: torch.Tensor | None = value
        self.lock_ref = 0
        self.last_access_time = 0
        self.id = next(_node_ids)

    def is_leaf(self) -> bool:
        return not self.children

    def __repr__(self) -> str:
        return f"TreeNode(id={self.id}, len={len(self.key)}, lock_ref={self.lock_ref})"


def _match_len(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of a and b."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class RadixCache(PrefixCache):
    """A radix tree of cached token sequences; evicted slots go back to `allocator`."""

    def __init__(self, allocator: KVSlotAllocator) -> None:
        self.allocator = allocator
        self.device = allocator.device
        self.reset()

    def reset(self) -> None:
        self.root = TreeNode(value=torch.empty(0, dtype=torch.int64, device=self.device))
        self.root.lock_ref = 1
        self._clock = 0
        self._evictable = 0
        self._protected = 0

    def match_prefix(self, key: Sequence[int]) -> MatchResult:
        """Walks `key` down the tree; splits the last edge when the match ends inside it, so
        `last_node` ends exactly at the prefix. Touches the access time of the whole path."""
        key = _as_list(key)
        now = self._tick()
        node = self.root
        node.last_access_time = now
        values = []
        while key and key[0] in node.children:
            child = node.children[key[0]]
            child.last_access_time = now
            n = _match_len(child.key, key)
            if n < len(child.key):
                child = self._split(child, n)
            values.append(child.value)
            node = child
            key = key[n:]
        indices = torch.cat(values) if values else self.root.value
        return MatchResult(indices, node)

    def insert(self, key: Sequence[int], value: torch.Tensor) -> int:
        """Caches key -> value. Returns the length already present; the tree keeps a copy of
        value[returned:], the caller frees whatever of value[:returned] it owns."""
        key = _as_list(key)
        if value.numel() != len(key):
            raise ValueError(f"key has {len(key)} tokens but value has {value.numel()} slots")
        now = self._tick()
        node = self.root
        node.last_access_time = now
        prefix_len = 0
        while key and key[0] in node.children:
            child = node.children[key[0]]
            child.last_access_time = now
            n = _match_len(child.key, key)
            if n < len(child.key):
                child = self._split(child, n)
            prefix_len += n
            node = child
            key, value = key[n:], value[n:]
        if key:
            leaf = TreeNode(key, value.clone())
            leaf.parent = node
            leaf.last_access_time = now
            node.children[key[0]] = leaf
            self._evictable += len(key)
        return prefix_len

    def _split(self, child: TreeNode, n: int) -> TreeNode:
        """Cuts child's edge after n tokens (0 < n < len) and returns the new middle node:

            before:  parent --[a b c d e]--> child
            after:   parent --[a b]--> mid --[c d e]--> child

        mid takes child's lock_ref (it lies on every path through child) and access time;
        sizes do not change."""
        mid = TreeNode(child.key[:n], child.value[:n])
        mid.parent = child.parent
        mid.lock_ref = child.lock_ref
        mid.last_access_time = child.last_access_time
        child.key, child.value = child.key[n:], child.value[n:]
        child.parent = mid
        mid.children[child.key[0]] = child
        mid.parent.children[mid.key[0]] = mid
        return mid

    def inc_lock_ref(self, node: TreeNode) -> int:
        moved = 0
        while node is not self.root:
            if node.lock_ref == 0:
                moved += len(node.key)
            node.lock_ref += 1
            node = node.parent
        self._evictable -= moved
        self._protected += moved
        return moved

    def dec_lock_ref(self, node: TreeNode) -> int:
        moved = 0
        while node is not self.root:
            if node.lock_ref <= 0:
                raise RuntimeError(f"dec_lock_ref on unlocked {node}")
            if node.lock_ref == 1:
                moved += len(node.key)
            node.lock_ref -= 1
            node = node.parent
        self._evictable += moved
        self._protected -= moved
        return moved

    def evict(self, num_tokens: int) -> int:
        """Frees unlocked leaves, least recently used first, until `num_tokens` slots are freed
        or nothing unlocked is left; a parent left childless and unlocked joins the candidates.
        Returns the slots freed (may exceed num_tokens by part of a leaf, or fall short)."""
        if num_tokens <= 0:
            return 0
        heap = [(n.last_access_time, n.id, n) for n in self._leaves() if n.lock_ref == 0]
        heapq.heapify(heap)
        freed = 0
        self.allocator.free_group_begin()
        try:
            while freed < num_tokens and heap:
                _, _, node = heapq.heappop(heap)
                parent = node.parent
                self.allocator.free(node.value)
                freed += len(node.key)
                self._evictable -= len(node.key)
                del parent.children[node.key[0]]
                node.parent = None
                if parent is not self.root and parent.is_leaf() and parent.lock_ref == 0:
                    heapq.heappush(heap, (parent.last_access_time, parent.id, parent))
        finally:
            self.allocator.free_group_end()
        return freed

    def evictable_size(self) -> int:
        return self._evictable

    def protected_size(self) -> int:
        return self._protected

    def check(self) -> None:
        if self.root.lock_ref != 1 or self.root.key:
            raise RuntimeError("root must have an empty key and lock_ref 1")
        evictable = protected = 0
        slots = []
        for node in self._nodes():
            if node is self.root:
                continue
            where = f"{node}"
            if not node.key or node.value is None or node.value.numel() != len(node.key):
                raise RuntimeError(f"{where}: key and value lengths differ or are empty")
            if node.parent is None or node.parent.children.get(node.key[0]) is not node:
                raise RuntimeError(f"{where}: not its parent's child under key[0]")
            if node.lock_ref < 0:
                raise RuntimeError(f"{where}: negative lock_ref")
            child_locks = sum(c.lock_ref for c in node.children.values())
            if node.lock_ref < child_locks:
                raise RuntimeError(f"{where}: lock_ref below its children's sum {child_locks}")
            if node.lock_ref == 0:
                evictable += len(node.key)
            else:
                protected += len(node.key)
            slots.append(node.value)
        if (evictable, protected) != (self._evictable, self._protected):
            raise RuntimeError(
                f"sizes (evictable, protected) = ({self._evictable}, {self._protected}), "
                f"tree has ({evictable}, {protected})"
            )
        if slots:
            held = torch.cat(slots)
            if torch.unique(held).numel() != held.numel() or bool((held == 0).any()):
                raise RuntimeError("a KV slot is held twice, or slot 0 is in the tree")

    def pretty_print(self) -> str:
        lines = []

        def walk(node: TreeNode, depth: int) -> None:
            for child in node.children.values():
                head = child.key[:8]
                more = "..." if len(child.key) > 8 else ""
                lines.append(
                    f"{'  ' * depth}{head}{more} len={len(child.key)} "
                    f"lock={child.lock_ref} t={child.last_access_time}"
                )
                walk(child, depth + 1)

        walk(self.root, 0)
        lines.append(f"evictable={self._evictable} protected={self._protected}")
        text = "\n".join(lines)
        print(text)
        return text

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _nodes(self) -> list[TreeNode]:
        out, stack = [], [self.root]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(node.children.values())
        return out

    def _leaves(self) -> list[TreeNode]:
        return [n for n in self._nodes() if n.is_leaf() and n is not self.root]


def _as_list(key: Sequence[int] | torch.Tensor) -> list[int]:
    return key.tolist() if isinstance(key, torch.Tensor) else list(key)
