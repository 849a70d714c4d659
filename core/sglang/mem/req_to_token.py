"""ReqToTokenPool: one row per running request, mapping its token positions to KV slots."""

from __future__ import annotations

import torch


class ReqToTokenPool:
    """`req_to_token`: int64 [size, max_context_len] on `device`; entry [row, pos] is the KV
    slot of token `pos` of the request that holds `row`. Rows are handed out by `alloc` and
    returned by `free`; the table is not cleared on free (a row's entries are meaningful only
    up to the owning request's length, which the caller tracks).

    The free list is host-side (plain Python): allocation never touches the device.
    """

    def __init__(self, size: int, max_context_len: int, device: torch.device) -> None:
        if size <= 0 or max_context_len <= 0:
            raise ValueError(
                f"size and max_context_len must be positive: {size}, {max_context_len}"
            )
        self.size = size
        self.max_context_len = max_context_len
        self.device = device
        self.req_to_token = torch.zeros((size, max_context_len), dtype=torch.int64, device=device)
        self.clear()

    def alloc(self) -> int | None:
        """A free row, or None when every row is taken."""
        if not self._free:
            return None
        row = self._free.pop()
        self._free_set.discard(row)
        return row

    def free(self, row: int) -> None:
        """Returns `row` to the pool. Raises ValueError on a row out of range or already free."""
        if not 0 <= row < self.size:
            raise ValueError(f"row {row} out of range [0, {self.size})")
        if row in self._free_set:
            raise ValueError(f"double free of request row {row}")
        self._free.append(row)
        self._free_set.add(row)

    def write(self, row: int, start: int, slots: torch.Tensor) -> None:
        """req_to_token[row, start:start+len(slots)] = slots."""
        end = start + slots.numel()
        if end > self.max_context_len:
            raise ValueError(f"positions up to {end} exceed max_context_len {self.max_context_len}")
        self.req_to_token[row, start:end] = slots

    def write_each(self, rows: list[int], positions: list[int], slots: torch.Tensor) -> None:
        """req_to_token[rows[i], positions[i]] = slots[i] for every i, in one indexed write
        (a decode step appends one slot to each running request)."""
        if positions and max(positions) >= self.max_context_len:
            raise ValueError(
                f"position {max(positions)} exceeds max_context_len {self.max_context_len}"
            )
        dev = self.req_to_token.device
        r = torch.tensor(rows, dtype=torch.int64).to(dev, non_blocking=True)
        p = torch.tensor(positions, dtype=torch.int64).to(dev, non_blocking=True)
        self.req_to_token[r, p] = slots

    def available_size(self) -> int:
        return len(self._free)

    def clear(self) -> None:
        """Every row free again (rows are then handed out in increasing order)."""
        self._free: list[int] = list(range(self.size - 1, -1, -1))
        self._free_set: set[int] = set(self._free)
