"""A GEMM op's weight arguments (the canonical layouts of sglang.ops.quant) back to the float
weight [N, K] they stand for: what a layer without a quantized kernel for its format (MoE
experts today) stores instead."""

from __future__ import annotations

from typing import Any

import torch

from sglang.ops.quant import fp4 as qfp4
from sglang.ops.quant import fp8 as qfp8
from sglang.ops.quant import int4 as qint4


def dequantize(op: str, args: dict[str, Any], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """op: "gemm.dense" | "gemm.fp8" | "gemm.int4" | "gemm.fp4" | "gemm.int8"; args as the
    op's spec takes them (LinearMethod.process's result) -> weight [N, K] in float32."""
    f32 = torch.float32
    if op == "gemm.dense":
        w = args["weight"].to(f32)
    elif op == "gemm.fp8":
        w, s, scheme = args["weight"].to(f32), args["weight_scale"].to(f32), args["scheme"]
        if scheme == "block":
            w = w * qfp8.expand_block_scale(s, tuple(args.get("block_size", (128, 128))), w.shape)
        elif scheme == "per_channel":
            w = w * s.reshape(-1, 1)
        else:
            w = w * s.reshape(())
    elif op == "gemm.int8":
        w = args["weight"].to(f32) * args["weight_scale"].to(f32).reshape(-1, 1)
    elif op == "gemm.int4":
        q, z = qint4.unpack_int4(args["qweight"], args["qzeros"], args["packing"])
        g_idx = args.get("g_idx")
        if g_idx is None:
            g_idx = qint4.default_g_idx(q.shape[0], args["group_size"], q.device)
        w = qint4.dequantize_int4(q, args["scales"], z, g_idx, f32).t()
    elif op == "gemm.fp4":
        if args["format"] == "nvfp4":
            glob = args.get("global_scale")
            glob = torch.ones(()) if glob is None else glob
            w = qfp4.dequantize_nvfp4(args["weight"], args["weight_scale"], glob, f32)
        else:
            w = qfp4.dequantize_mxfp4(args["weight"], args["weight_scale"], f32)
    else:
        raise ValueError(f"no dequantization for op {op!r}")
    return w.contiguous().to(dtype)
