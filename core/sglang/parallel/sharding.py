"""How a checkpoint tensor splits over tensor-parallel ranks.

A column-parallel layer splits its output features (each merged shard on its own: q, k and v
of a qkv projection each split over the ranks), a row-parallel layer its input features. A
parameter says which of its dimensions runs along each (`ParamSpec.output_dim` /
`input_dim`) and how many features one entry there covers (`output_div` / `input_div`: 8 for
int4 words packed along that dimension, the block size of a block scale). Splitting a
dimension into equal parts is then exact as long as each rank's features fill whole entries;
where they do not, the error names the tensor and the tile.
"""

from __future__ import annotations

import torch


class ShardingError(ValueError):
    """A layer or tensor that cannot be split over the requested ranks."""


def local_size(total: int, parts: int, what: str) -> int:
    if total % parts:
        raise ShardingError(f"{what}: {total} does not split evenly over {parts} ranks")
    return total // parts


def split_part(tensor: torch.Tensor, dim: int, part: int, parts: int, what: str) -> torch.Tensor:
    """Part `part` of `parts` equal slices of `tensor` along `dim` (a view)."""
    size = tensor.shape[dim]
    if size % parts:
        raise ShardingError(
            f"{what}: {size} entries along dim {dim} do not split evenly over {parts} ranks"
        )
    step = size // parts
    return tensor.narrow(dim, part * step, step)


def check_tiles(features: int, div: int, what: str) -> None:
    if div > 1 and features % div:
        raise ShardingError(
            f"{what}: {features} features per rank do not fill the format's {div}-feature "
            "tiles; use a tensor-parallel size that keeps them whole"
        )


def kv_head_part(rank: int, tp_size: int, num_kv_heads: int) -> tuple[int, int]:
    """(part, parts) of the KV heads this rank holds. With fewer KV heads than ranks each head
    is replicated on tp_size / num_kv_heads neighbouring ranks (SGLang's layout)."""
    if num_kv_heads >= tp_size:
        local_size(num_kv_heads, tp_size, "KV heads")
        return rank, tp_size
    if tp_size % num_kv_heads:
        raise ShardingError(
            f"{num_kv_heads} KV heads cannot be replicated evenly over {tp_size} ranks"
        )
    return rank * num_kv_heads // tp_size, num_kv_heads
