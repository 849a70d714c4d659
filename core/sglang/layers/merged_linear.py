"""Merged projections: several linear layers of the same input in one GEMM (gate_up, qkv).

The weight's rows are the concatenation of the shards; `load_shard` copies a checkpoint
tensor into its rows. Column-parallel, each shard splits over the ranks on its own, so rank r
holds [gate_r, up_r] (and q_r, k_r, v_r by heads for QKVLinear).
"""

from __future__ import annotations

import torch

from sglang.layers.linear import Linear, tp_group
from sglang.layers.ops_table import OpTable
from sglang.parallel.sharding import kv_head_part, local_size
from sglang.parallel.state import GroupInfo


class MergedLinear(Linear):
    """Several projections of the same input in one GEMM; shards named in `shard_sizes`
    (whole-layer sizes; column-parallel, each shard splits over the ranks on its own).
    checkpoint_names: shard -> the projection's name in the checkpoint (default
    "<shard>_proj": q -> q_proj, gate -> gate_proj), for messages and ignore lists."""

    def __init__(
        self,
        in_features: int,
        shard_sizes: dict[str, int],
        ops: OpTable,
        checkpoint_names: dict[str, str] | None = None,
        parallel: str | None = None,
        **kw,
    ) -> None:
        tp = tp_group(ops) if parallel else GroupInfo()
        local = {name: self.local_shard_size(name, size, tp) for name, size in shard_sizes.items()}
        super().__init__(
            in_features,
            sum(shard_sizes.values()),
            ops,
            parallel=parallel,
            local_out_features=sum(local.values()),
            **kw,
        )
        self.shard_offsets: dict[str, tuple[int, int]] = {}
        start = 0
        for name, size in (local if self.parallel else shard_sizes).items():
            self.shard_offsets[name] = (start, size)
            start += size
        self.checkpoint_names = checkpoint_names or {s: f"{s}_proj" for s in shard_sizes}

    def local_shard_size(self, shard: str, size: int, tp: GroupInfo) -> int:
        """Shard `shard`'s output features on this rank (column-parallel)."""
        return local_size(size, tp.size, f"{type(self).__name__} shard {shard}")

    def shard_names(self) -> tuple[str, ...]:
        return tuple(self.shard_offsets)

    def checkpoint_prefixes(self) -> list[str]:
        """The names the checkpoint gives this layer's shards (model.layers.0.self_attn.q_proj
        ...)."""
        parent = self.prefix.rpartition(".")[0]
        return [f"{parent}.{n}" if parent else n for n in self.checkpoint_names.values()]

    def checkpoint_name(self, name: str, shard: str | None = None) -> str:
        if shard is None:
            return super().checkpoint_name(name)
        parent = self.prefix.rpartition(".")[0]
        piece = self.checkpoint_names.get(shard, shard)
        return f"{parent}.{piece}.{name}" if parent else f"{piece}.{name}"

    def load_shard(
        self, shard: str, tensor: torch.Tensor, is_bias: bool = False, name: str | None = None
    ) -> None:
        """Copy the checkpoint tensor `name` of one shard (is_bias: name "bias", the older
        spelling) into its rows."""
        self.load(name or ("bias" if is_bias else "weight"), tensor, shard)

    def split(self, out: torch.Tensor) -> list[torch.Tensor]:
        return list(out.split([size for _, size in self.shard_offsets.values()], dim=-1))


class QKVLinear(MergedLinear):
    """The q, k, v projections of attention (shards "q", "k", "v"), column-parallel by heads:
    each rank holds num_heads / tp query heads and num_kv_heads / tp KV heads, or one KV head
    when there are fewer KV heads than ranks (replicated on tp / num_kv_heads ranks)."""

    def __init__(
        self,
        in_features: int,
        head_dim: int,
        num_heads: int,
        num_kv_heads: int,
        ops: OpTable,
        v_head_dim: int | None = None,
        **kw,
    ) -> None:
        self.num_kv_heads_total = num_kv_heads
        v_dim = v_head_dim or head_dim
        sizes = {"q": num_heads * head_dim, "k": num_kv_heads * head_dim, "v": num_kv_heads * v_dim}
        super().__init__(in_features, sizes, ops, parallel="column", **kw)

    def local_shard_size(self, shard: str, size: int, tp: GroupInfo) -> int:
        if shard == "q":
            return super().local_shard_size(shard, size, tp)
        _, parts = kv_head_part(tp.rank, tp.size, self.num_kv_heads_total)
        return size // parts

    def shard_part(self, shard: str | None) -> tuple[int, int]:
        if shard in ("k", "v"):
            return kv_head_part(self.tp.rank, self.tp.size, self.num_kv_heads_total)
        return super().shard_part(shard)
