"""gemm.dense on ACME's matrix unit, emulated: K is cut into tiles of `K_TILE`; each tile's
partial product is computed with float32 accumulators, and the tiles' partials are summed in
float32 in tile order, as the unit's output stage does. bfloat16 inputs are widened to float32
on load; the result is rounded once to the input dtype."""

from __future__ import annotations

import torch
import torch.nn.functional as F

K_TILE = 256


def dense(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    m, k = x.shape
    n = weight.shape[0]
    tiles = max(1, -(-k // K_TILE))
    pad = tiles * K_TILE - k  # zero padding adds nothing to a dot product
    xt = F.pad(x.float(), (0, pad)).view(m, tiles, K_TILE).transpose(0, 1)  # [tiles, M, Kt]
    wt = F.pad(weight.float(), (0, pad)).view(n, tiles, K_TILE).transpose(0, 1)  # [tiles, N, Kt]
    out = torch.bmm(xt, wt.transpose(1, 2)).sum(dim=0)  # [M, N]
    if bias is not None:
        out += bias.float()
    return out.to(x.dtype)


def register(registry) -> None:
    registry.register("gemm.dense", dense, name="acme.gemm_dense")
