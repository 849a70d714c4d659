"""On an accelerator, in bfloat16, greedy outputs match transformers run on the same device.

bfloat16 rounding differs between our kernels and transformers' (fused attention, GEMM split),
so near-ties may flip a token and what follows it: the check is the CUDA issue's, the same
first 16 tokens on at least 9 of 10 prompts, and prompt logprobs close (a bfloat16 tolerance).
The models are tiny random ones with transformers' default init (0.02), a 128-token vocabulary
and tied embeddings: on the CPU, transformers in bfloat16 and our xeon backend in bfloat16
agree on 10 of 10 prompts for both, and both sit ~0.033 (mean |logprob| difference) from
float32, while the parity models of test_parity (init 0.25, 512 tokens, untied) have so many
near-ties that two correct bfloat16 implementations agree on only 6-8 of 10.
Skipped where no accelerator backend is available (CI)."""

from __future__ import annotations

import random

import pytest
import torch
from sglang.backend.discovery import discover
from sglang.engine.engine import Engine
from tiny_models import save_tiny_model

PROMPTS = 10
NEW_TOKENS = 16
MODEL = dict(vocab_size=128, initializer_range=0.02, tie_word_embeddings=True)
MIN_EQUAL = 9
LOGPROB_MEAN_ABS = 0.01  # measured on the CPU (xeon vs transformers, bf16): 0.0007-0.0011
LOGPROB_MAX_ABS = 0.1  # measured: 0.003-0.004


def accelerator() -> str | None:
    """The best available accelerator backend and its torch device type, or None."""
    found = [
        b
        for b in discover().backends.values()
        if b.available and b.info is not None and b.info.kind == "accelerator"
    ]
    if not found:
        return None
    return max(found, key=lambda b: b.info.auto_priority).name


BACKEND = accelerator()
pytestmark = pytest.mark.skipif(BACKEND is None, reason="no accelerator backend available")


def device_type() -> str:
    return discover().backends[BACKEND].info.device_type


def prompts() -> list[list[int]]:
    rng = random.Random(0)
    vocab = MODEL["vocab_size"]
    return [
        [1] + [rng.randrange(3, vocab) for _ in range(rng.randrange(4, 40))] for _ in range(PROMPTS)
    ]


def hf_reference(path: str, prompt_ids: list[int]) -> tuple[list[int], list[float]]:
    """Greedy continuation (EOS not masked) and prompt logprobs, transformers on the device."""
    import transformers as tf

    dev = device_type()
    model = tf.AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.bfloat16).to(dev)
    model.eval()
    with torch.no_grad():
        ids = torch.tensor([prompt_ids], device=dev)
        logits = model(ids).logits[0].float()
        lp = torch.log_softmax(logits, dim=-1)
        prompt_lp = [float(lp[i - 1, prompt_ids[i]]) for i in range(1, len(prompt_ids))]
        out = model.generate(
            ids,
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
            min_new_tokens=NEW_TOKENS,
            pad_token_id=0,
            eos_token_id=None,
        )
    return out[0, len(prompt_ids) :].tolist(), prompt_lp


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_bf16_greedy_matches_transformers_on_device(arch, tmp_path):
    path = save_tiny_model(arch, str(tmp_path), **MODEL)
    equal, diffs = 0, []
    with Engine(
        model_path=path,
        device=BACKEND,
        dtype="bfloat16",
        skip_tokenizer_init=True,
        max_total_tokens=4096,
        log_level="warning",
    ) as engine:
        for prompt in prompts():
            out = engine.generate(
                input_ids=prompt,
                sampling_params={
                    "max_new_tokens": NEW_TOKENS,
                    "temperature": 0,
                    "ignore_eos": True,
                },
                return_logprob=True,
                logprob_start_len=0,
            )
            want_ids, want_lp = hf_reference(path, prompt)
            equal += out["output_ids"] == want_ids
            got_lp = [lp for lp, _, _ in out["meta_info"]["input_token_logprobs"]][1:]
            diffs += [abs(a - b) for a, b in zip(got_lp, want_lp, strict=True)]
    print(
        f"{arch}: {equal}/{PROMPTS} equal, logprob |diff| mean {sum(diffs) / len(diffs):.4f} "
        f"max {max(diffs):.4f}"
    )
    assert equal >= MIN_EQUAL, f"{arch}: only {equal} of {PROMPTS} prompts gave the same tokens"
    assert sum(diffs) / len(diffs) <= LOGPROB_MEAN_ABS
    assert max(diffs) <= LOGPROB_MAX_ABS
