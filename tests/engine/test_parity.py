"""Greedy tokens and prompt logprobs match Hugging Face transformers on the CPU, for a tiny
random model of every supported architecture, on the reference and xeon backends."""

from __future__ import annotations

import pytest
from sglang.engine.engine import Engine
from tiny_models import configs, hf_greedy, hf_prompt_logprobs, save_tiny_model

PROMPTS = [[1, 17, 33, 250, 99, 7, 412, 5], [1, 300, 301, 302]]
MAX_NEW = 32


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    return {n: save_tiny_model(n, str(tmp_path_factory.mktemp(n))) for n in configs()}


def available(backend: str) -> bool:
    from sglang.backend.discovery import discover

    found = discover().backends.get(backend)
    return found is not None and found.available


BACKENDS = [
    "reference",
    "xeon",
    pytest.param("cuda", marks=pytest.mark.skipif(not available("cuda"), reason="no CUDA device")),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", list(configs()))
def test_greedy_and_prompt_logprobs_match_transformers(model_dirs, arch, backend):
    path = model_dirs[arch]
    with Engine(
        model_path=path,
        device=backend,
        dtype="float32",
        skip_tokenizer_init=True,
        max_total_tokens=2048,
        log_level="warning",
    ) as engine:
        for prompt in PROMPTS:
            out = engine.generate(
                input_ids=prompt,
                sampling_params={"max_new_tokens": MAX_NEW, "temperature": 0, "ignore_eos": True},
                return_logprob=True,
                logprob_start_len=0,
            )
            expected = hf_greedy(path, prompt, MAX_NEW)
            assert out["output_ids"] == expected, f"{arch} on {backend}"
            got = [lp for lp, _, _ in out["meta_info"]["input_token_logprobs"]]
            assert got[0] is None
            ref = hf_prompt_logprobs(path, prompt)
            assert got[1:] == pytest.approx(ref, abs=2e-4, rel=1e-4)
