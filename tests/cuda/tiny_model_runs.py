"""A tiny Hugging Face model run end to end on the cuda backend's Triton kernels (tests/cuda's
model tests): a 16-token prompt as two prefill chunks (the second attends to the first through
the cache) and three decode steps, every row's float64 log-probabilities, beside transformers'
for the same prompt (eager attention, tiny_models.hf_model)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch
from sglang.backend.selection import Platform
from sglang.conformance import model as model_check
from sglang.forward_batch import ForwardMode
from sglang.layers.linear import prepare_linear_layers
from sglang.layers.ops_table import OpTable
from sglang.mem.kv_cache import KVCache
from sglang.model_executor.model_registry import get_model_class

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
from tiny_models import hf_model  # noqa: E402

MODULES = (
    "sglang_triton.norm",
    "sglang_triton.activation",
    "sglang_triton.rope",
    "sglang_triton.kv",
    "sglang_triton.attention",
    "sglang_triton.dense",
)
PROMPT = [1, 17, 33, 250, 99, 7, 412, 5, 300, 301, 302, 44, 123, 9, 480, 61]
CHUNKS = (6, 13)  # prefill [0, 6), then [6, 13) over the cached 6; decode the last 3 one by one
ABS, REL = 2e-4, 1e-4  # test_parity's


def transformers_logprobs(path: str, prepare: Callable | None = None) -> torch.Tensor:
    """transformers' log-probabilities of every prompt row; `prepare(model)` may alter the
    model first."""
    model = hf_model(path)
    if prepare is not None:
        prepare(model)
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([PROMPT])).logits[0].double(), -1)


def kernel_logprobs(found, path: str, label: str):
    """(log-probabilities of every prompt row, the model) on the Discovery's "k" backend, in
    float32, the prompt run in CHUNKS and then decoded."""
    from safetensors.torch import load_file
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    platform = Platform(found, found.backends["k"], label)
    ops = OpTable(platform)
    dev, dtype = platform.runtime.device, torch.float32
    built = model_check.Built(None, dev, dtype, platform.runtime)
    rows = []
    with torch.inference_mode():
        built.model = get_model_class(config.architectures)(config, ops, dtype, dev).eval()
        built.model.load_weights(load_file(f"{path}/model.safetensors").items())
        prepare_linear_layers(built.model, None)
        hd = config.head_dim
        cache = KVCache(
            config.num_hidden_layers, 64, config.num_key_value_heads, hd, hd, dtype, dev
        )
        slots = model_check.page_slots([len(PROMPT)], seed=3)
        steps = [(0, CHUNKS[0]), CHUNKS] + [(i, i + 1) for i in range(CHUNKS[1], len(PROMPT))]
        for start, end in steps:
            mode = ForwardMode.EXTEND if end - start > 1 else ForwardMode.DECODE
            seqs = [(PROMPT[start:end], start)]
            batch = model_check.forward_batch(mode, built, cache, seqs, slots, all_rows=True)
            rows.append(built.model(batch).to("cpu", torch.float64))
    return torch.log_softmax(torch.cat(rows), -1), built.model
