"""MXFP4 in gpt-oss's layout: the conversion to gemm.fp4's arguments dequantizes to what
transformers' own gpt-oss reader (`_convert_moe_packed_tensors`) makes of the same tensors,
and the gemm.fp4 reference multiplies with exactly those weights."""

from __future__ import annotations

import pytest
import torch
from sglang.layers.quantization.mxfp4 import expert_weight_args
from sglang.ops.gemm_fp4 import fp4

mxfp4 = pytest.importorskip("transformers.integrations.mxfp4")


def gpt_oss_tensors(e=3, n=48, k=128, seed=0):
    gen = torch.Generator().manual_seed(seed)
    blocks = torch.randint(0, 256, (e, n, k // 32, 16), generator=gen, dtype=torch.uint8)
    scales = torch.randint(120, 132, (e, n, k // 32), generator=gen, dtype=torch.uint8)
    return blocks, scales


def test_expert_args_dequantize_as_transformers_does():
    blocks, scales = gpt_oss_tensors()
    args = expert_weight_args(blocks, scales)
    # [E, K, N]: transformers transposes for gpt-oss's x @ w
    theirs = mxfp4._convert_moe_packed_tensors(blocks, scales, dtype=torch.float32)
    x = torch.randn(5, blocks.shape[2] * 32, dtype=torch.float32)
    for e in range(blocks.shape[0]):
        out = fp4(
            x=x, weight=args["weight"][e], weight_scale=args["weight_scale"][e], format="mxfp4"
        )
        torch.testing.assert_close(out, x @ theirs[e], rtol=1e-5, atol=1e-4)


def test_misshapen_blocks_are_refused():
    blocks, scales = gpt_oss_tensors()
    with pytest.raises(ValueError, match="expected"):
        expert_weight_args(blocks[..., :8], scales)


def test_mxfp4_checkpoint_keeps_dense_layers_dense():
    from sglang.layers.quantization.registry import resolve_quantization

    config = resolve_quantization(
        {"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn"]}, None
    )
    assert config.requires() == ("fp4:mxfp4",)
    assert config.linear_method("model.layers.0.self_attn.o_proj", object()) is None
