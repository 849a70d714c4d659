"""RMSNorm over the `norm.rms` op, with the fused residual add."""

from __future__ import annotations

import torch
from torch import nn

from sglang.layers.base import Layer
from sglang.layers.ops_table import OpTable


class RMSNorm(Layer):
    """weight * x / rms(x). Gemma's variant scales by (1 + weight): pass `offset=1.0` and the
    offset is folded into the weight at load time, so the op stays one kernel."""

    def __init__(
        self,
        dim: int,
        ops: OpTable,
        eps: float = 1e-6,
        offset: float = 0.0,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        self.ops, self.eps, self.offset = ops, eps, offset
        self.weight = nn.Parameter(torch.ones(dim, dtype=dtype, device=device), requires_grad=False)

    def load(self, tensor: torch.Tensor) -> None:
        self.weight.data.copy_(tensor.float() + self.offset)

    def forward(
        self, x: torch.Tensor, residual: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        weight = self._parameters["weight"]  # not self.weight: nn.Module's slow __getattr__
        if residual is None:
            return self.ops.rms_norm(x=x, weight=weight, eps=self.eps)
        return self.ops.rms_norm(x=x, weight=weight, eps=self.eps, residual=residual)
