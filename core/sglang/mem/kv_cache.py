"""KVCache: per-layer key and value buffers indexed by KV slot (token-major, "NHD")."""

from __future__ import annotations

import torch


class KVCache:
    """For each layer, K: [num_slots + 1, num_kv_heads, head_dim] and
    V: [num_slots + 1, num_kv_heads, v_head_dim], both `dtype` on `device`. Row s holds the
    token in KV slot s; row 0 is the padding slot (padded batches write there, nobody reads it).
    The slot indices come from a KVSlotAllocator of size `num_slots`. A pipeline stage holds
    layers `first_layer` .. `first_layer + num_layers - 1` (layer ids stay the model's).
    """

    def __init__(
        self,
        num_layers: int,
        num_slots: int,
        num_kv_heads: int,
        head_dim: int,
        v_head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
        first_layer: int = 0,
    ) -> None:
        self.num_layers, self.first_layer = num_layers, first_layer
        self.num_slots = num_slots
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.v_head_dim = v_head_dim
        self.dtype = dtype
        self.device = device
        rows = num_slots + 1
        # Uninitialised: every slot is written (kv.store) before any kernel reads it, and the
        # host-memory pages of a large CPU pool are only touched as slots are used. The
        # padding row is zeroed so padded batches read finite values.
        self._k = [
            torch.empty((rows, num_kv_heads, head_dim), dtype=dtype, device=device)
            for _ in range(num_layers)
        ]
        self._v = [
            torch.empty((rows, num_kv_heads, v_head_dim), dtype=dtype, device=device)
            for _ in range(num_layers)
        ]
        for buf in (*self._k, *self._v):
            buf[0].zero_()

    def k_buffer(self, layer: int) -> torch.Tensor:
        return self._k[layer - self.first_layer]

    def v_buffer(self, layer: int) -> torch.Tensor:
        return self._v[layer - self.first_layer]

    def store(self, layer: int, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Writes k [n, H, D] and v [n, H, Dv] into `slots` (int64 [n]) of `layer`."""
        self._k[layer - self.first_layer][slots] = k.to(self.dtype)
        self._v[layer - self.first_layer][slots] = v.to(self.dtype)

    @staticmethod
    def bytes_per_token(
        num_layers: int, num_kv_heads: int, head_dim: int, v_head_dim: int, dtype: torch.dtype
    ) -> int:
        """Bytes one slot costs across all layers (K and V), to size the pool before allocating."""
        itemsize = torch.empty((), dtype=dtype).element_size()
        return num_layers * num_kv_heads * (head_dim + v_head_dim) * itemsize

    def nbytes(self) -> int:
        """Bytes held by all buffers, the padding slot included."""
        return sum(t.numel() * t.element_size() for t in (*self._k, *self._v))


def tokens_that_fit(budget_bytes: int, bytes_per_token: int) -> int:
    """The largest `num_slots` whose KVCache (num_slots + 1 rows, for the padding slot) fits in
    `budget_bytes`; 0 when not even one usable slot fits."""
    if bytes_per_token <= 0:
        raise ValueError(f"bytes_per_token must be positive, got {bytes_per_token}")
    return max(0, budget_bytes // bytes_per_token - 1)
