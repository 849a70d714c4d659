"""moe.experts with torch_npu.npu_grouped_matmul: the routed (token, slot) pairs sorted by expert
(glue.expert_groups), one grouped GEMM for gate/up over all experts (x single tensor, one weight
per expert, group_list the running sum of the per-expert counts, split_item 2: one output
tensor), the gated activation (npu_swiglu for silu), a second grouped GEMM for down, each row
scaled by its routing weight and summed back per token. Weights are passed transposed
([K, N] per expert), as the operator multiplies x @ w."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sglang_ascend.kernels.glue import expert_groups
from sglang_ascend.kernels.npu import half_only, npu, register_npu


def _grouped(x, weights, group_list):
    return npu().npu_grouped_matmul(
        [x],
        [w.t() for w in weights],
        group_list=group_list,
        split_item=2,
        group_type=0,
        group_list_type=0,
    )[0]


def experts(x, w13, w2, topk_weights, topk_ids, activation="silu"):
    if activation not in ("silu", "gelu"):
        raise ValueError(f"activation must be silu or gelu, got {activation!r}")
    tokens, hidden = x.shape
    top_k, num_experts = topk_ids.shape[-1], w13.shape[0]
    order, group_list, routed = expert_groups(topk_ids, num_experts)
    if routed == 0:
        return torch.zeros_like(x)
    pairs = order[:routed]
    gate_up = _grouped(x[pairs // top_k], list(w13.unbind(0)), group_list)
    if activation == "silu":
        h = npu().npu_swiglu(gate_up, dim=-1)
    else:
        inter = gate_up.shape[-1] // 2
        h = (F.gelu(gate_up[:, :inter].float()) * gate_up[:, inter:].float()).to(x.dtype)
    y = _grouped(h, list(w2.unbind(0)), group_list).float()
    y = y * topk_weights.reshape(-1)[pairs].float().unsqueeze(1)
    out = torch.zeros(tokens * top_k, hidden, dtype=torch.float32, device=x.device)
    out.index_copy_(0, pairs, y)
    return out.view(tokens, top_k, hidden).sum(dim=1).to(x.dtype)


def register(registry) -> None:
    register_npu(registry, "moe.experts", experts, "npu_grouped_matmul_moe", unsupported=half_only)
