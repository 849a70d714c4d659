"""The default model at the default command on xeon (SmolLM2-135M-Instruct GGUF, bfloat16): its
Q4_1 decoder layers run gemm.w4a8, the input of each quantized to int8 per block of 32 as
llama.cpp's Q4_1 x Q8_1 dot does. Checked against transformers in float32 on the same
dequantized weights with the same activation quantization applied, written here from the
format's description (dx = amax / 127 per 32 inputs, x rounded to the nearest multiple of dx),
not from the op's code.

Tolerance: what remains between the two is the engine's bfloat16 elsewhere (activations between
layers, norms, attention, the KV cache, the Q8_0 head on bf16 inputs), the same noise the W4A16
default shows against float32 transformers without activation quantization: measured mean
|logprob diff| 0.043, max 0.20 over these prompts (W4A8 against this reference: 0.060 / 0.18).
The int8 rounding itself moves float32 transformers' logprobs by 0.043 mean, 0.20 max. The
bounds are about twice the measured bf16-only figures; a wrong scale or group layout in the
4-bit layers moves logprobs by whole units.
"""

from __future__ import annotations

import pytest
import torch
from sglang.engine.engine import Engine
from sglang.model_loader import (
    default_model_path,
    iterate_weights,
    load_model_config,
    load_tokenizer,
    resolve_source,
)

PROMPTS = [
    "The capital of France is",
    "<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):",
]
MAX_NEW = 16
MEAN_BOUND, MAX_BOUND = 0.1, 0.4
TIE = 0.5  # a greedy step whose top two reference logits are closer is a near-tie
GROUP = 32


def _q8_input(module, args):
    """The Q8 activation blocks: per row and 32 inputs, dx = amax / 127, x -> round(x / dx) dx."""
    x = args[0]
    rows = x.reshape(-1, x.shape[-1] // GROUP, GROUP).float()
    dx = rows.abs().amax(-1, keepdim=True) / 127
    q = torch.round(rows / torch.where(dx > 0, dx, torch.ones_like(dx)))
    return ((q * dx).reshape(x.shape).to(x.dtype),)


@pytest.fixture(scope="module")
def q8_model():
    import transformers as tf

    source = resolve_source(default_model_path())
    config = load_model_config(source, "float32")
    model = tf.LlamaForCausalLM(config.raw).eval()
    state = dict(iterate_weights(source, hf_config=config.raw))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}
    model.tie_weights()
    for name, module in model.named_modules():  # the Q4_1 projections, not the Q8_0 head
        if isinstance(module, torch.nn.Linear) and ".layers." in f".{name}":
            module.register_forward_pre_hook(_q8_input)
    return model, load_tokenizer(source)


def test_default_model_on_w4a8_matches_q8_activations(q8_model):
    model, tokenizer = q8_model
    with Engine(device="xeon", log_level="warning", max_total_tokens=2048) as e:
        outs = [
            e.generate(
                input_ids=tokenizer.encode(p),
                sampling_params={"max_new_tokens": MAX_NEW, "temperature": 0, "ignore_eos": True},
                return_logprob=True,
                logprob_start_len=0,
            )
            for p in PROMPTS
        ]
    diffs = []
    for prompt, out in zip(PROMPTS, outs):
        ids = tokenizer.encode(prompt)
        with torch.no_grad():
            logits = model(torch.tensor([ids + out["output_ids"]])).logits[0].double()
        ref = torch.log_softmax(logits, -1)
        expected = torch.tensor([float(ref[i - 1, ids[i]]) for i in range(1, len(ids))])
        got = [lp for lp, _, _ in out["meta_info"]["input_token_logprobs"][1:]]
        diffs.append((torch.tensor(got, dtype=torch.float64) - expected).abs())
        for step, token in enumerate(out["output_ids"]):
            row = logits[len(ids) - 1 + step]
            top2 = row.topk(2).values
            if float(top2[0] - top2[1]) > TIE:
                assert token == int(row.argmax()), (prompt, step)
            else:
                break  # past a near-tie the two continuations may differ
    diff = torch.cat(diffs)
    assert float(diff.mean()) < MEAN_BOUND and float(diff.max()) < MAX_BOUND, diff
