"""Programs against the real server on the default model (SmolLM2-135M-Instruct): select
matches log-likelihoods computed directly through /generate, branches and batches are served
from the prefix cache, roles render as the server's own chat template, streaming and
constrained generation."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest
import sglang as sgl
from lang_helpers import post

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "frontend")
sys.path.insert(0, os.path.abspath(EXAMPLES))

SELECT_CASES = [
    ("Q: What colour is the sky on a clear day?\nA: The sky is", [" blue", " green", " purple"]),
    ("The opposite of hot is", [" cold", " warm", " very very hot indeed"]),
    ("2 + 2 =", [" 4", " 5", " twenty-two"]),
]


def tokenize(url, text, special):
    return post(url, "/tokenize", {"prompt": text, "add_special_tokens": special})["tokens"]


def direct_normalized_logprob(url, prompt, choice) -> float:
    """Mean logprob of the choice's tokens, from one plain /generate over the whole prompt
    (no cache: logprob_start_len 0 scores every position)."""
    prefix, tail = tokenize(url, prompt, True), tokenize(url, choice, False)
    reply = post(
        url,
        "/generate",
        {
            "input_ids": prefix + tail,
            "sampling_params": {"max_new_tokens": 1},
            "return_logprob": True,
            "logprob_start_len": 0,
        },
    )
    logprobs = reply["meta_info"]["input_token_logprobs"][len(prefix) :]
    assert [t for _, t, _ in logprobs] == tail
    return sum(lp for lp, _, _ in logprobs) / len(tail)


@pytest.mark.parametrize("prompt,choices", SELECT_CASES)
def test_select_picks_the_highest_normalized_loglikelihood(url, backend, prompt, choices):
    calls = []
    original = backend._generate

    def counting(body):
        calls.append(body)
        return original(body)

    @sgl.function
    def prog(s):
        s += prompt + sgl.select("answer", choices=choices)

    backend._generate = counting
    try:
        state = prog.run(backend=backend)
    finally:
        del backend._generate
    want = [direct_normalized_logprob(url, prompt, c) for c in choices]
    got = state.get_meta_info("answer")["normalized_prompt_logprobs"]
    assert got == pytest.approx(want, abs=2e-3)
    best = max(range(len(want)), key=lambda i: want[i])
    assert state["answer"] == choices[best]
    assert state.text() == prompt + choices[best]
    # The prompt once, then every choice in one batched scoring request.
    assert len(calls) == 2
    assert calls[0]["sampling_params"] == {"max_new_tokens": 0}
    assert len(calls[1]["input_ids"]) == len(choices)


def test_fork_branches_are_served_from_the_cache(url, backend):
    from few_shot_classification import few_shot_prefix

    prefix = few_shot_prefix()[:600]
    n_prefix = len(tokenize(url, prefix, True))

    @sgl.function
    def prog(s):
        s += prefix
        forks = s.fork(3)
        forks += lambda i: f"\nBranch {i}:"
        forks += sgl.gen("out", max_tokens=3, temperature=0)
        forks.join()

    state = prog.run(backend=backend)
    gens = [r for r in state.requests if r.kind == "gen"]
    assert len(gens) == 3 and [r.kind for r in state.requests].count("prefix") == 1
    assert all(r.cached_tokens >= n_prefix - 2 for r in gens), (n_prefix, state.requests)


def test_batch_of_32_programs_reuses_the_500_token_prefix(url, backend):
    from few_shot_classification import FEW_SHOT, TEST_REVIEWS, classify

    n_prefix = len(tokenize(url, FEW_SHOT, True))
    assert 450 <= n_prefix <= 560
    backend.flush_cache()
    reviews = [{"review": f"{TEST_REVIEWS[i % 4][0]} (review #{i})"} for i in range(32)]
    states = classify.run_batch(reviews, backend=backend, num_threads=32)
    assert all(s.error() is None for s in states)
    first_requests = [s.requests[0] for s in states]
    fractions = [r.cached_tokens / n_prefix for r in first_requests]
    assert min(fractions[1:]) >= 0.9, fractions
    assert all(s["label"] in (" positive", " negative") for s in states)


def test_roles_render_as_the_servers_chat_template(url, backend):
    messages = [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": "What is the capital of Italy?"},
    ]

    @sgl.function
    def prog(s):
        s += sgl.system(messages[0]["content"])
        s += sgl.user(messages[1]["content"])
        s += sgl.assistant(sgl.gen("answer", max_tokens=8, temperature=0))

    state = prog.run(backend=backend)
    chat = post(
        url,
        "/v1/chat/completions",
        {"messages": messages, "max_tokens": 8, "temperature": 0},
    )
    meta = state.get_meta_info("answer")
    assert meta["prompt_tokens"] == chat["usage"]["prompt_tokens"]
    assert state["answer"] == chat["choices"][0]["message"]["content"]
    assert state.messages()[-1] == {"role": "assistant", "content": state["answer"].lstrip()}


def test_streaming_gives_the_same_text(backend):
    @sgl.function
    def prog(s):
        s += "Write a short list of three fruits:\n1."
        s += sgl.gen("fruits", max_tokens=16, temperature=0)

    plain = prog.run(backend=backend).text()
    state = prog.run(backend=backend, stream=True)
    pieces = list(state.text_iter())
    assert "".join(pieces) == plain and len(pieces) > 2


def test_regex_and_json_schema_constrain_the_output(backend, constrained):
    if not constrained:
        pytest.skip("the server does not constrain generation yet (structured outputs)")
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}, "year": {"type": "integer"}},
        "required": ["city", "year"],
        "additionalProperties": False,
    }

    @sgl.function
    def prog(s):
        s += "The year the Eiffel Tower opened, as four digits: "
        s += sgl.gen("year", max_tokens=6, regex="[0-9]{4}", temperature=0)
        s += "\nAs JSON with city and year: "
        s += sgl.gen("record", max_tokens=48, json_schema=schema, temperature=0)
        s += "\nA number: " + sgl.gen("n", max_tokens=6, dtype=int)

    state = prog.run(backend=backend)
    assert re.fullmatch("[0-9]{4}", state["year"])
    record = json.loads(state["record"])
    assert set(record) == {"city", "year"} and isinstance(record["year"], int)
    assert re.fullmatch(r"[-+]?[0-9]+", state["n"])
