"""The batched sampler's logit processing against a direct per-token formulation of each rule
(HF's repetition penalty, OpenAI's frequency/presence penalties, logit bias, min-tokens)."""

from __future__ import annotations

import torch
from sglang.backend.selection import select_platform
from sglang.layers.ops_table import OpTable
from sglang.sampling.params import SamplingParams
from sglang.sampling.sampler import SampleInput, Sampler

V = 50


def make_sampler():
    return Sampler(OpTable(select_platform("reference")), V)


def processed(params: dict, prompt, output, logits):
    sampler = make_sampler()
    inp = SampleInput(
        SamplingParams.from_dict(params), prompt, output, torch.Generator(), frozenset({2})
    )
    row = logits.clone()
    sampler._process_row(row, inp)
    return row


def test_repetition_penalty_matches_hf_rule():
    logits = torch.randn(V, generator=torch.Generator().manual_seed(0))
    prompt, output = [3, 4, 4], [7, 3]
    got = processed({"repetition_penalty": 1.5}, prompt, output, logits)
    expected = logits.clone()
    for t in {3, 4, 7}:
        x = float(logits[t])
        expected[t] = x / 1.5 if x > 0 else x * 1.5
    assert torch.allclose(got, expected)


def test_frequency_and_presence_penalties_count_output_tokens_only():
    logits = torch.zeros(V)
    got = processed(
        {"frequency_penalty": 0.5, "presence_penalty": 0.25}, [9, 9, 9], [5, 5, 6], logits
    )
    expected = torch.zeros(V)
    expected[5] = -(0.5 * 2 + 0.25)
    expected[6] = -(0.5 * 1 + 0.25)
    assert torch.allclose(got, expected)


def test_logit_bias_and_min_new_tokens_mask():
    logits = torch.zeros(V)
    got = processed(
        {"logit_bias": {"11": 3.0}, "min_new_tokens": 4, "stop_token_ids": [12]}, [1], [0], logits
    )
    assert got[11] == 3.0
    assert got[2] == float("-inf") and got[12] == float("-inf")  # eos and stop ids banned
    got = processed({"min_new_tokens": 1}, [1], [0], logits)
    assert torch.isfinite(got).all()


def test_greedy_and_seeded_sampling():
    sampler = make_sampler()
    logits = torch.randn(3, V, generator=torch.Generator().manual_seed(1))

    def run(params, seed):
        inputs = [
            SampleInput(
                SamplingParams.from_dict(params),
                [1],
                [],
                torch.Generator().manual_seed(seed),
                frozenset({2}),
                return_logprob=True,
                top_logprobs_num=2,
            )
            for _ in range(3)
        ]
        return sampler(logits, inputs)

    greedy = run({"temperature": 0}, 0)
    assert greedy.ids == logits.argmax(-1).tolist()
    lp = torch.log_softmax(logits, -1)
    assert greedy.logprobs[0] == float(lp[0].max())
    assert [t for t, _ in greedy.top_logprobs[0]] == lp[0].topk(2).indices.tolist()
    a, b = run({"temperature": 1.0}, 7), run({"temperature": 1.0}, 7)
    assert a.ids == b.ids
