"""The real server on SmolLM2-135M-Instruct, driven by the official `openai` client."""

from __future__ import annotations

import pytest

MODEL = "SmolLM2-135M-Instruct"
# Japan: a question the 135M model answers in bfloat16 greedy too (for France its first token
# is a near-tie, 'The' vs 'L', which bfloat16 logits round to a tie).
QUESTION = [{"role": "user", "content": "What is the capital of Japan?"}]


def rendered_prompt_ids(tokenizer, messages):
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer.encode(text, add_special_tokens=False)


def test_models(client):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]


def test_chat_completion_and_usage_counts(client, tokenizer):
    r = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, max_tokens=30)
    choice = r.choices[0]
    assert "Tokyo" in choice.message.content
    assert choice.finish_reason == "stop"
    assert r.usage.prompt_tokens == len(rendered_prompt_ids(tokenizer, QUESTION))
    # The finishing EOS token counts as generated; the text excludes it.
    assert r.usage.completion_tokens == len(tokenizer.encode(choice.message.content)) + 1
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_stream_matches_non_stream(client):
    kw = dict(model=MODEL, messages=QUESTION, temperature=0, max_tokens=30)
    full = client.chat.completions.create(**kw).choices[0].message.content
    chunks = list(
        client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw)
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full
    finals = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finals == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_completion_stream_and_length(client, tokenizer):
    kw = dict(model=MODEL, prompt="The capital of France is", temperature=0, max_tokens=12)
    r = client.completions.create(**kw)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 12
    assert r.usage.prompt_tokens == len(tokenizer.encode("The capital of France is"))
    streamed = "".join(c.choices[0].text for c in client.completions.create(stream=True, **kw))
    assert streamed == r.choices[0].text


def test_n_and_seed(client):
    kw = dict(model=MODEL, messages=QUESTION, temperature=1.0, max_tokens=20, seed=7)
    a = client.chat.completions.create(n=2, **kw)
    b = client.chat.completions.create(n=2, **kw)
    assert len(a.choices) == 2 and [c.index for c in a.choices] == [0, 1]
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]
    other = client.chat.completions.create(n=1, **{**kw, "seed": 8})
    assert other.choices[0].message.content != a.choices[0].message.content
    texts = client.completions.create(
        model=MODEL, prompt="Once upon a time", n=2, max_tokens=16, temperature=1.0, seed=3
    )
    assert len(texts.choices) == 2


def test_logprobs(client):
    r = client.chat.completions.create(
        model=MODEL, messages=QUESTION, temperature=0, max_tokens=8, logprobs=True, top_logprobs=3
    )
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for item in content:
        assert item.logprob <= 0 and len(item.top_logprobs) == 3
        assert item.top_logprobs[0].token == item.token  # greedy takes the most likely token
        assert item.top_logprobs[0].logprob == pytest.approx(item.logprob)
    c = client.completions.create(
        model=MODEL, prompt="The capital of France is", temperature=0, max_tokens=5, logprobs=2
    )
    lp = c.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 5
    assert "".join(lp.tokens) == c.choices[0].text
    assert all(len(t) == 2 for t in lp.top_logprobs)


def test_stop_strings(client):
    kw = dict(model=MODEL, prompt="1, 2, 3, 4, 5,", temperature=0, max_tokens=30)
    full = client.completions.create(**kw).choices[0].text
    assert " 8" in full
    r = client.completions.create(stop=[" 8"], **kw)
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].text == full[: full.index(" 8")]


def test_cached_tokens_on_repeated_prompt(client):
    messages = [{"role": "system", "content": "You are a terse assistant. " * 20}, *QUESTION]
    client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=4)
    again = client.chat.completions.create(
        model=MODEL, messages=messages, temperature=0, max_tokens=4
    )
    assert again.usage.prompt_tokens_details.cached_tokens >= again.usage.prompt_tokens - 1


def test_extra_sampling_fields(client):
    r = client.completions.create(
        model=MODEL,
        prompt="The capital of France is",
        max_tokens=10,
        temperature=0,
        extra_body={
            "ignore_eos": True,
            "min_tokens": 10,
            "top_k": 1,
            "repetition_penalty": 1.1,
            "stop_token_ids": [],
            "skip_special_tokens": True,
            "min_p": 0.0,
        },
    )
    assert r.usage.completion_tokens == 10
