"""The gated MLP (down(act(gate(x)) * up(x))) of dense decoder layers and shared experts."""

from __future__ import annotations

import torch

from sglang.layers.activation import gated_activation
from sglang.layers.base import Layer
from sglang.layers.linear import Linear
from sglang.layers.merged_linear import MergedLinear
from sglang.layers.ops_table import OpTable


class GatedMLP(Layer):
    """gate_up_proj (shards "gate", "up") then down_proj; hidden_act a Hugging Face name."""

    def __init__(
        self,
        hidden_size: int,
        intermediate_size: int,
        ops: OpTable,
        hidden_act: str = "silu",
        bias: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        kw = dict(bias=bias, dtype=dtype, device=device)
        shards = {"gate": intermediate_size, "up": intermediate_size}
        # Megatron's split: gate/up by columns, down by rows, one all-reduce at the end.
        self.gate_up_proj = MergedLinear(hidden_size, shards, ops, parallel="column", **kw)
        self.down_proj = Linear(intermediate_size, hidden_size, ops, parallel="row", **kw)
        self.act = gated_activation(ops, hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act(self.gate_up_proj(x)))
