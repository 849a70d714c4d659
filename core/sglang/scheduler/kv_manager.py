"""KVManager: who holds which KV slots. Glues the request table, the slot allocator and the
prefix cache into the verb pairs the scheduler uses (admit / release, grow), plus
`cache_unfinished`, which shares a running request's computed prefix through the cache."""

from __future__ import annotations

import torch

from sglang.cache.base import PrefixCache
from sglang.mem.req_to_token import ReqToTokenPool
from sglang.mem.slot_allocator import KVSlotAllocator
from sglang.scheduler.req import Req


class KVManager:
    def __init__(
        self, req_to_token: ReqToTokenPool, allocator: KVSlotAllocator, cache: PrefixCache
    ):
        self.req_to_token, self.allocator, self.cache = req_to_token, allocator, cache

    # --- capacity ------------------------------------------------------------------------
    def available(self) -> int:
        """Slots obtainable now: free ones plus cached ones nobody locks."""
        return self.allocator.available_size() + self.cache.evictable_size()

    def _alloc(self, n: int) -> torch.Tensor | None:
        short = n - self.allocator.available_size()
        if short > 0:
            self.cache.evict(short)
        return self.allocator.alloc(n)

    # --- prefix matching -------------------------------------------------------------------
    def match(self, req: Req, limit: int) -> tuple[torch.Tensor, object]:
        """The cached prefix of req.fill_ids, at most `limit` tokens long."""
        match = self.cache.match_prefix(req.fill_ids[:limit])
        return match.indices, match.last_node

    # --- admit / grow / release ------------------------------------------------------------
    def admit(self, req: Req, prefix: torch.Tensor, last_node: object, extend_len: int) -> bool:
        """Give a waiting request a table row, its cached prefix (locked) and `extend_len` new
        slots. Returns False (and holds nothing) when memory does not allow it."""
        self.cache.inc_lock_ref(last_node)
        row = self.req_to_token.alloc()
        slots = self._alloc(extend_len) if row is not None else None
        if slots is None:
            if row is not None:
                self.req_to_token.free(row)
            self.cache.dec_lock_ref(last_node)
            return False
        req.row, req.last_node = row, last_node
        req.prefix_len = req.kv_len = int(prefix.numel())
        if req.prefix_len:
            self.req_to_token.write(row, 0, prefix.to(self.req_to_token.device))
        self.req_to_token.write(row, req.kv_len, slots)
        return True

    def grow(self, req: Req, n: int) -> torch.Tensor | None:
        """n more slots for a request that holds a row (next chunk, or a decode token);
        written after its current KV. Returns them, or None when memory is short."""
        slots = self._alloc(n)
        if slots is not None:
            self.req_to_token.write(req.row, req.kv_len, slots)
        return slots

    def grow_decode(self, reqs: list[Req]) -> torch.Tensor | None:
        """One more slot for each request (a decode step), after its current KV: one
        allocation and one table write for the batch, not one of each per request (each is a
        device operation: milliseconds of host time a step at batch 256). Returns the slots
        in request order, or None (nothing taken) when memory is short."""
        slots = self._alloc(len(reqs))
        if slots is not None:
            self.req_to_token.write_each([r.row for r in reqs], [r.kv_len for r in reqs], slots)
        return slots

    def cache_unfinished(self, req: Req) -> None:
        """Share a running request's computed KV through the prefix cache (SGLang's
        `cache_unfinished_req`), called after each prefill forward (every chunk).

        fill_ids[:kv_len] go into the tree; slots someone else cached meanwhile (a request of
        the same batch computed the same prefix) are freed and the row points at the tree's;
        the lock moves from the old last node to the new deepest one. Afterwards
        prefix_len == kv_len: every slot the request has is the tree's, locked by it, and
        later requests match them while this one is still decoding."""
        if req.row is None or req.kv_len <= req.prefix_len or not self.cache.stores_prefixes:
            return
        key = req.fill_ids[: req.kv_len]
        slots = self.slots_of(req, req.kv_len).clone()
        already = self.cache.insert(key, slots)
        if already > req.prefix_len:
            self.allocator.free(slots[req.prefix_len : already])
        match = self.cache.match_prefix(key)
        if match.indices.numel() != req.kv_len:
            raise RuntimeError(
                f"cached {req.kv_len} tokens but matched {match.indices.numel()} back"
            )
        if already > req.prefix_len:
            self.req_to_token.write(
                req.row, 0, match.indices[:already].to(self.req_to_token.device)
            )
        self.cache.inc_lock_ref(match.last_node)
        self.cache.dec_lock_ref(req.last_node)
        req.last_node, req.prefix_len = match.last_node, req.kv_len

    def slots_of(self, req: Req, end: int) -> torch.Tensor:
        return self.req_to_token.req_to_token[req.row, :end]

    def release(self, req: Req) -> None:
        """Hand the request's KV to the prefix cache (or free it), unlock its prefix and free
        its row. Afterwards the request holds nothing and must be re-prefilled to continue."""
        if req.row is None:
            return
        key = req.fill_ids[: req.kv_len]
        slots = self.slots_of(req, req.kv_len).clone()
        own = slots[req.prefix_len :]
        if self.cache.stores_prefixes:
            already = self.cache.insert(key, slots)
            if already > req.prefix_len:
                self.allocator.free(slots[req.prefix_len : already])
        elif own.numel():
            self.allocator.free(own)
        self.cache.dec_lock_ref(req.last_node)
        self.req_to_token.free(req.row)
        req.row, req.last_node, req.kv_len, req.prefix_len = None, None, 0, 0

    def check_idle(self) -> None:
        """With no request holding anything, every slot is free or cached, every row free."""
        free, cached = self.allocator.available_size(), self.cache.total_size()
        total = self.allocator.total_size
        if free + cached != total or self.cache.protected_size():
            raise RuntimeError(
                f"KV leak: free {free} + cached {cached} != total {total} "
                f"(protected {self.cache.protected_size()})"
            )
        if self.req_to_token.available_size() != self.req_to_token.size:
            raise RuntimeError("request rows leaked")
        self.cache.check()
