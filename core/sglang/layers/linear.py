"""Linear layers over the `gemm.dense` op, with the merged projections models use.

Weights are stored [out_features, in_features] (Hugging Face's layout). Merged layers (qkv,
gate_up) hold one weight whose rows are the concatenation of their shards; `load_shard` copies
a checkpoint tensor into its rows.
"""

from __future__ import annotations

import torch
from torch import nn

from sglang.layers.ops_table import OpTable


class Linear(nn.Module):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        ops: OpTable,
        bias: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        self.ops = ops
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(
            torch.empty(out_features, in_features, dtype=dtype, device=device), requires_grad=False
        )
        self.bias = (
            nn.Parameter(torch.zeros(out_features, dtype=dtype, device=device), requires_grad=False)
            if bias
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ops.gemm_dense(x=x, weight=self.weight, bias=self.bias)


class MergedLinear(Linear):
    """Several projections of the same input in one GEMM; shards named in `shard_sizes`."""

    def __init__(self, in_features: int, shard_sizes: dict[str, int], ops: OpTable, **kw) -> None:
        super().__init__(in_features, sum(shard_sizes.values()), ops, **kw)
        self.shard_offsets: dict[str, tuple[int, int]] = {}
        start = 0
        for name, size in shard_sizes.items():
            self.shard_offsets[name] = (start, size)
            start += size

    def load_shard(self, shard: str, tensor: torch.Tensor, is_bias: bool = False) -> None:
        start, size = self.shard_offsets[shard]
        target = self.bias if is_bias else self.weight
        if tensor.shape[0] != size:
            raise ValueError(
                f"shard {shard}: checkpoint has {tensor.shape[0]} rows, expected {size}"
            )
        target.data[start : start + size].copy_(tensor)

    def split(self, out: torch.Tensor) -> list[torch.Tensor]:
        return list(out.split([size for _, size in self.shard_offsets.values()], dim=-1))
