"""KVSlotAllocator: hands out KV cache slots (token-granular indices into the KV buffers)."""

from __future__ import annotations

import torch


class KVSlotAllocator:
    """Owns the slot indices 1..size of a KV pool whose buffers have size+1 rows; slot 0 is the
    padding slot and is never handed out.

    Free slots live in a device tensor. `free` only appends to a list of released tensors; they
    are merged (one concatenation and a sort, so later allocations come out mostly contiguous)
    when an `alloc` needs them. Between `free_group_begin()` and `free_group_end()` frees are
    collected and become available at the end (groups nest; the outermost end releases them).

    `free` keeps a copy of its argument, since callers often pass views of `req_to_token` that
    are rewritten later. Inside a group the copy is made once, at `free_group_end`: until then
    the freed tensors must not be written.

    `debug=True` keeps a per-slot "is free" mask and makes `free` raise ValueError at once on a
    double free, a free of slot 0 or a slot out of range (each free then syncs with the device).
    `check()` finds the same faults after the fact, without the mask.

    page_size > 1 (allocation in whole pages) is not implemented yet: the constructor raises
    NotImplementedError.
    """

    def __init__(
        self, size: int, device: torch.device, page_size: int = 1, debug: bool = False
    ) -> None:
        if page_size != 1:
            raise NotImplementedError(
                f"KVSlotAllocator supports page_size=1 only for now (got {page_size})"
            )
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        self.total_size = size
        self.page_size = page_size
        self.device = device
        self.debug = debug
        self.clear()

    def clear(self) -> None:
        """Every slot free again; pending groups are dropped."""
        self._free = torch.arange(1, self.total_size + 1, dtype=torch.int64, device=self.device)
        self._released: list[torch.Tensor] = []
        self._released_count = 0
        self._group: list[torch.Tensor] = []
        self._group_depth = 0
        self._is_free = (
            torch.ones(self.total_size + 1, dtype=torch.bool, device=self.device)
            if self.debug
            else None
        )
        if self._is_free is not None:
            self._is_free[0] = False

    def available_size(self) -> int:
        """Slots an `alloc` can hand out now (frees inside an open group are not counted)."""
        return self._free.numel() + self._released_count

    def alloc(self, n: int) -> torch.Tensor | None:
        """n free slots as an int64 tensor [n], or None (and nothing taken) if fewer are free."""
        if n < 0:
            raise ValueError(f"cannot allocate {n} slots")
        if n > self._free.numel():
            self._merge_released()
            if n > self._free.numel():
                return None
        slots, self._free = self._free[:n], self._free[n:]
        if self._is_free is not None:
            self._is_free[slots] = False
        return slots

    def free(self, slots: torch.Tensor) -> None:
        """Returns `slots` (int64 [n]) to the pool. The caller must not use them afterwards."""
        if slots.numel() == 0:
            return
        slots = slots.reshape(-1)
        if self._is_free is not None:
            self._debug_check_free(slots)
        if self._group_depth > 0:
            self._group.append(slots)
        else:
            self._released.append(slots.clone())
            self._released_count += slots.numel()

    def free_group_begin(self) -> None:
        self._group_depth += 1

    def free_group_end(self) -> None:
        if self._group_depth == 0:
            raise RuntimeError("free_group_end without free_group_begin")
        self._group_depth -= 1
        if self._group_depth == 0 and self._group:
            merged = torch.cat(self._group)
            self._group = []
            self._released.append(merged)
            self._released_count += merged.numel()

    def check(self) -> None:
        """Raises RuntimeError unless every free or pending slot is in 1..size and appears once."""
        pending = [self._free, *self._released, *self._group]
        all_free = torch.cat(pending)
        if all_free.numel() == 0:
            return
        if int(all_free.min()) < 1 or int(all_free.max()) > self.total_size:
            raise RuntimeError(f"free list holds a slot outside 1..{self.total_size}")
        counts = torch.bincount(all_free, minlength=self.total_size + 1)
        if int(counts.max()) > 1:
            twice = torch.nonzero(counts > 1).reshape(-1)[:8].tolist()
            raise RuntimeError(f"slots freed twice: {twice}")
        if all_free.numel() > self.total_size:
            raise RuntimeError("more free slots than the pool holds")

    def _merge_released(self) -> None:
        if not self._released:
            return
        merged = torch.cat([self._free, *self._released])
        self._free = torch.sort(merged).values
        self._released = []
        self._released_count = 0

    def _debug_check_free(self, slots: torch.Tensor) -> None:
        assert self._is_free is not None
        if int(slots.min()) < 1 or int(slots.max()) > self.total_size:
            raise ValueError(f"free of a slot outside 1..{self.total_size}")
        if torch.unique(slots).numel() != slots.numel() or bool(self._is_free[slots].any()):
            raise ValueError("double free of a KV slot")
        self._is_free[slots] = True
