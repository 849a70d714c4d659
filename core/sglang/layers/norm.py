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

    def pending(self, x: torch.Tensor, residual: torch.Tensor | None) -> PendingNorm:
        """This norm of x (+ residual), left for the next dense projection to run (PendingNorm)."""
        return PendingNorm(self, x, residual)

    def forward(
        self, x: torch.Tensor, residual: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        weight = self._parameters["weight"]  # not self.weight: nn.Module's slow __getattr__
        if residual is None:
            return self.ops.rms_norm(x=x, weight=weight, eps=self.eps)
        return self.ops.rms_norm(x=x, weight=weight, eps=self.eps, residual=residual)


class PendingNorm:
    """A norm's input, not yet normed: what a decoder layer hands its attention or MLP block
    where the backend runs gemm.dense_rms on a kernel of its own, so that the block's first
    dense projection runs the norm inside its GEMV (`Linear.forward`) instead of a launch of
    its own. Anything else reads `normed()` (the norm then runs as before, once). After either,
    `residual_out()` is the new residual stream (x + residual; x itself for the first layer's
    norm, which has no residual).

    keep_normed: the first projection also returns the normed row, for a second reader (the
    experts after a mixture-of-experts block's router)."""

    __slots__ = ("x", "residual", "norm", "keep_normed", "_normed", "_residual_out")

    def __init__(self, norm: RMSNorm, x: torch.Tensor, residual: torch.Tensor | None) -> None:
        self.x, self.residual, self.norm = x, residual, norm
        self.keep_normed = False
        self._normed: torch.Tensor | None = None
        self._residual_out: torch.Tensor | None = None

    @property
    def shape(self) -> torch.Size:
        return self.x.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.x.dtype

    def normed(self) -> torch.Tensor:
        if self._normed is None:
            if self.residual is None:
                self._normed, self._residual_out = self.norm(self.x), self.x
            else:
                self._normed, self._residual_out = self.norm(self.x, self.residual)
        return self._normed

    def residual_out(self) -> torch.Tensor:
        if self._residual_out is None:
            self.normed()
        return self._residual_out

    def project(self, fn, **weights) -> torch.Tensor:
        """y = fn (a gemm.dense_rms kernel with its weights bound) of this norm; records the
        new residual stream (and the normed row when kept)."""
        out = fn(
            x=self.x,
            norm_weight=self.norm._parameters["weight"],
            eps=self.norm.eps,
            residual=self.residual,
            return_normed=self.keep_normed,
            **weights,
        )
        out = out if isinstance(out, tuple) else (out,)
        y, rest = out[0], list(out[1:])
        self._residual_out = rest.pop(0) if self.residual is not None else self.x
        if self.keep_normed:
            self._normed = rest.pop(0)
        return y
