"""What this rank holds of the model, for the startup log and /get_server_info."""

from __future__ import annotations

from typing import Any

from sglang.layers.attention import Attention
from sglang.layers.embedding import VocabEmbedding
from sglang.layers.moe import FusedMoE
from sglang.parallel.pipeline import stage_layers
from sglang.parallel.sharding import kv_head_part
from sglang.parallel.state import ParallelState


def _span(start: int, count: int, total: int) -> str:
    if count == total:
        return f"all {total}"
    return f"{start} of {total}" if count == 1 else f"{start}-{start + count - 1} of {total}"


def rank_layout(model: Any, parallel: ParallelState, config: Any) -> dict[str, Any]:
    tp = parallel.tp
    layout: dict[str, Any] = {
        "rank": parallel.world.rank,
        "ranks": parallel.world.size,
        "tp_rank": tp.rank,
        "tp_size": tp.size,
    }
    pp = parallel.pp
    if pp.size > 1:
        n = config.num_hidden_layers
        layers = stage_layers(n, pp.rank, pp.size)
        layout["pp_rank"], layout["pp_size"] = pp.rank, pp.size
        layout["layers"] = _span(layers.start, len(layers), n)
    attn = next((m for m in model.modules() if isinstance(m, Attention)), None)
    if attn is not None:
        heads = config.num_attention_heads
        kv = getattr(config, "num_key_value_heads", None) or heads
        layout["query_heads"] = _span(tp.rank * attn.num_heads, attn.num_heads, heads)
        if attn.num_kv_heads == kv:
            layout["kv_heads"] = _span(0, kv, kv)
        else:
            part, _ = kv_head_part(tp.rank, tp.size, kv)
            layout["kv_heads"] = _span(part * attn.num_kv_heads, attn.num_kv_heads, kv)
    moe = next((m for m in model.modules() if isinstance(m, FusedMoE)), None)
    if moe is not None:
        layout["ep_rank"], layout["ep_size"] = parallel.ep.rank, parallel.ep.size
        total = moe.routing.num_experts
        layout["experts"] = _span(moe.expert_start, moe.num_local, total)
        if moe.inter != moe.full_inter:
            part = parallel.moe_tp.rank * moe.inter
            layout["expert_features"] = _span(part, moe.inter, moe.full_inter)
    emb = next((m for m in model.modules() if isinstance(m, VocabEmbedding)), None)
    if emb is not None:
        rows = min(emb.weight.shape[0], max(emb.vocab_size - emb.vocab_start, 0))
        layout["vocab_rows"] = _span(emb.vocab_start, rows, emb.vocab_size)
    return layout


def describe(layout: dict[str, Any]) -> str:
    parts = [
        f"{k.replace('_', ' ')} {layout[k]}"
        for k in ("layers", "query_heads", "kv_heads", "experts", "expert_features", "vocab_rows")
        if k in layout
    ]
    return (
        f"rank {layout['rank']} of {layout['ranks']} (tp rank {layout['tp_rank']} of "
        f"{layout['tp_size']}) holds " + ", ".join(parts)
    )
