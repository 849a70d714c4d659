"""Weight-only int4 (`quantization="int4"`) on SmolLM2-135M-Instruct, the embedded GGUF: its
decoder layers are Q4_1 (w = d * q + m per 32 weights), its embedding, tied to the LM head,
Q8_0.

- Re-quantizing a Q4_1 layer group-wise with float zero points gives back the file's weights
  (int4_weight_args' claim), so the int4 decoder layers compute what the float ones do.
- The LM head is a real 4-bit re-quantization of Q8_0 weights: the model's outputs move, by
  about 0.1-0.2 in prompt logprobs (measured in float32: mean |diff| 0.13-0.16, max 0.47; with
  the head left float the difference is 0.000). Greedy answers agree for their first tokens.
"""

from __future__ import annotations

import itertools

import torch
from sglang.engine.engine import Engine
from sglang.layers.linear import int4_weight_args
from sglang.model_loader import (
    default_model_path,
    iterate_weights,
    load_model_config,
    load_tokenizer,
    resolve_source,
)
from sglang.ops.quant import int4 as q4

PROMPTS = [
    "The capital of France is",
    "<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):",
]
MAX_NEW = 16
FIRST_TOKENS = 6


def _dequantized(args) -> torch.Tensor:
    q = q4.unpack_qweight(args["qweight"], args["packing"])
    g_idx = q4.default_g_idx(q.shape[0], args["group_size"])
    return q4.dequantize_int4(q, args["scales"], args["qzeros"], g_idx, torch.float64).t()


def test_int4_recovers_the_q4_1_layers():
    source = resolve_source(default_model_path())
    config = load_model_config(source, "float32")
    layer0 = (
        (n, t)
        for n, t in iterate_weights(source, hf_config=config.raw)
        if n.startswith("model.layers.0.") and n.endswith("proj.weight")
    )
    checked = 0
    for name, w in itertools.islice(layer0, 7):
        for dtype, bound in ((torch.float32, 1e-12), (torch.bfloat16, 1e-4)):
            wd = w.to(dtype)
            back = _dequantized(int4_weight_args(wd))
            ref = wd.double()
            nmse = float(((back - ref) ** 2).sum() / (ref**2).sum())
            assert nmse < bound, (name, dtype, nmse)
        checked += 1
    assert checked == 7  # q, k, v, o, gate, up, down


def _run(quantization):
    tokenizer = load_tokenizer(resolve_source(default_model_path()))
    outs = []
    with Engine(
        device="xeon",
        dtype="float32",
        log_level="warning",
        max_total_tokens=2048,
        quantization=quantization,
    ) as e:
        for prompt in PROMPTS:
            out = e.generate(
                input_ids=tokenizer.encode(prompt),
                sampling_params={"max_new_tokens": MAX_NEW, "temperature": 0, "ignore_eos": True},
                return_logprob=True,
                logprob_start_len=0,
            )
            lps = [lp for lp, _, _ in out["meta_info"]["input_token_logprobs"][1:]]
            outs.append((out["output_ids"], torch.tensor(lps)))
    return outs


def test_int4_model_stays_close_to_the_float_model():
    base, quant = _run(None), _run("int4")
    same_start = 0
    for (ids, lps), (qids, qlps) in zip(base, quant):
        diff = (lps - qlps).abs()
        assert float(diff.mean()) < 0.25 and float(diff.max()) < 1.0, diff
        same_start += ids[:FIRST_TOKENS] == qids[:FIRST_TOKENS]
    assert same_start >= 2
