"""GGUF files stay quantized by default: the layers the file publishes in 4 bits are served
through gemm.int4, the others (the Q8_0 embedding tied to the LM head) in the float dtype."""

from __future__ import annotations

import torch
from sglang.backend.selection import select_platform
from sglang.engine.settings import resolve
from sglang.layers.linear import Linear
from sglang.model_executor.model_runner import ModelRunner
from sglang.model_loader import load_model_config, resolve_source
from sglang.model_loader.gguf_quantization import FOUR_BIT_TYPES, plan_quantization
from sglang.server_args import ServerArgs


def _runner(default_gguf, **kw) -> ModelRunner:
    args = ServerArgs(device="xeon", max_total_tokens=256, disable_cuda_graph=True, **kw)
    platform = select_platform("xeon")
    args = resolve(args, platform.backend.server_defaults(total_memory_bytes=1 << 34))
    source = resolve_source(default_gguf)
    config = load_model_config(source, "bfloat16")
    return ModelRunner(args, platform, config, source)


def test_default_gguf_keeps_its_4bit_layers(default_gguf):
    runner = _runner(default_gguf)
    assert runner.quantization == "int4"
    layers = {n: m for n, m in runner.model.named_modules() if isinstance(m, Linear)}
    by_op = {name: layer.gemm_op for name, layer in layers.items()}
    # Every decoder projection was Q4_1 in the file: 4-bit; the head (tied to the Q8_0
    # embedding) keeps bfloat16, never fewer bits than the file has.
    assert by_op.pop("lm_head") == "gemm.dense"
    assert set(by_op.values()) == {"gemm.int4"} and len(by_op) == 30 * 4


def test_explicit_int4_quantizes_every_layer(default_gguf):
    runner = _runner(default_gguf, quantization="int4")
    ops = {m.gemm_op for m in runner.model.modules() if isinstance(m, Linear)}
    assert ops == {"gemm.int4"}


def test_plan_without_gguf_types_is_dense():
    model = torch.nn.Linear(4, 4)
    assert plan_quantization(None, model, None).method is None
    assert plan_quantization("int4", model, None).method == "int4"
    plan = plan_quantization(None, model, {"weight": "Q8_0", "bias": "F32"})
    assert plan.method is None and "no 4-bit" in plan.reason
    assert "Q4_K" in FOUR_BIT_TYPES and "Q8_0" not in FOUR_BIT_TYPES
