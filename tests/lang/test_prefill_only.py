"""max_new_tokens=0 runs the prefill only (scoring and prefix caching, as the frontend language
uses it): no output token, prompt logprobs as asked, and the prompt left in the prefix cache."""

from __future__ import annotations

import pytest
from sglang.engine.engine import Engine
from tiny_models import save_tiny_model

PROMPT = [1] + [(13 * j) % 480 + 7 for j in range(60)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model("llama", str(tmp_path_factory.mktemp("llama")))


@pytest.mark.parametrize("chunked", [False, True])
def test_prefill_only_scores_and_caches(model_dir, chunked):
    with Engine(
        model_path=model_dir,
        device="xeon",
        dtype="float32",
        skip_tokenizer_init=True,
        log_level="warning",
        max_total_tokens=2048,
        chunked_prefill_size=16 if chunked else -1,
    ) as e:
        first = e.generate(input_ids=PROMPT, sampling_params={"max_new_tokens": 0})
        assert first["output_ids"] == []
        assert first["meta_info"]["finish_reason"] == {"type": "length", "length": 0}
        assert first["meta_info"]["completion_tokens"] == 0
        scored = e.generate(
            input_ids=PROMPT + [5, 6, 7],
            sampling_params={"max_new_tokens": 0},
            return_logprob=True,
            logprob_start_len=len(PROMPT),
        )
        assert scored["output_ids"] == []
        assert [t for _, t, _ in scored["meta_info"]["input_token_logprobs"]] == [5, 6, 7]
        assert scored["meta_info"]["cached_tokens"] == len(PROMPT) - 1
        full = e.generate(
            input_ids=PROMPT + [5, 6, 7],
            sampling_params={"max_new_tokens": 1},
            return_logprob=True,
            logprob_start_len=0,
        )
        want = [lp for lp, _, _ in full["meta_info"]["input_token_logprobs"][-3:]]
        got = [lp for lp, _, _ in scored["meta_info"]["input_token_logprobs"]]
        assert got == pytest.approx(want, abs=1e-4)
        e.check_idle()
