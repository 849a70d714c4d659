"""SmolLM2-135M-Instruct (the embedded GGUF) matches transformers on the CPU: the first 32 greedy
tokens and the prompt logprobs, on the reference and xeon backends. The transformers model is
transformers' own LlamaForCausalLM, given the GGUF's config and the dequantized weights (which
tests/model_loader checks equal transformers' own GGUF loading)."""

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
from tiny_models import greedy_continuation

PROMPTS = [
    "The capital of France is",
    "<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):",
]
MAX_NEW = 32


@pytest.fixture(scope="module")
def hf_model():
    import transformers as tf

    source = resolve_source(default_model_path())
    config = load_model_config(source, "float32")
    model = tf.LlamaForCausalLM(config.raw).eval()
    state = dict(iterate_weights(source, hf_config=config.raw))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}
    model.tie_weights()
    return model, load_tokenizer(source)


@pytest.mark.parametrize("backend", ["reference", "xeon"])
def test_smollm2_matches_transformers(hf_model, backend):
    model, tokenizer = hf_model
    with Engine(device=backend, dtype="float32", log_level="warning", max_total_tokens=4096) as e:
        for prompt in PROMPTS:
            ids = tokenizer.encode(prompt)
            with torch.no_grad():
                expected = greedy_continuation(model, ids, MAX_NEW)
                logits = model(torch.tensor([ids])).logits[0].float()
            out = e.generate(
                input_ids=ids,
                sampling_params={"max_new_tokens": MAX_NEW, "temperature": 0, "ignore_eos": True},
                return_logprob=True,
                logprob_start_len=0,
            )
            assert out["output_ids"] == expected, prompt
            ref = torch.log_softmax(logits, -1)
            ref_lps = [float(ref[i - 1, ids[i]]) for i in range(1, len(ids))]
            got = [lp for lp, _, _ in out["meta_info"]["input_token_logprobs"][1:]]
            assert got == pytest.approx(ref_lps, abs=2e-4, rel=1e-4)
