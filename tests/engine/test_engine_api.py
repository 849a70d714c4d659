"""sglang.Engine on the embedded default model (SmolLM2-135M-Instruct, GGUF): SGLang's result
shape, stop conditions, seeds, n, logprobs, logit bias, streaming, abort, and clear errors."""

from __future__ import annotations

import asyncio

import pytest
from sglang.engine.engine import Engine

PROMPT = "Once upon a time, in a small village by the sea,"
GREEDY = {"temperature": 0, "max_new_tokens": 40, "ignore_eos": True}


@pytest.fixture(scope="module")
def engine():
    # float32: greedy tokens of a batch equal those of its requests alone (in bfloat16 the
    # kernels' rounding differs with the batch's row count, as in SGLang without
    # --enable-deterministic-inference), and the 135M model's near-tie answers hold still.
    with Engine(device="xeon", dtype="float32", log_level="warning", max_total_tokens=8192) as e:
        yield e


@pytest.fixture(scope="module")
def greedy(engine):
    return engine.generate(PROMPT, GREEDY)


def test_default_model_and_result_shape(engine, greedy):
    assert engine.server_info["architecture"] == "LlamaForCausalLM"
    assert set(greedy) == {"text", "output_ids", "meta_info"}
    meta = greedy["meta_info"]
    assert meta["finish_reason"] == {"type": "length", "length": 40}
    assert meta["completion_tokens"] == len(greedy["output_ids"]) == 40
    assert meta["prompt_tokens"] == len(engine.tokenizer.encode(PROMPT))
    assert greedy["text"] == engine.tokenizer.decode(greedy["output_ids"], skip_special_tokens=True)


def test_stop_string_spanning_tokens_is_trimmed(engine, greedy):
    text = greedy["text"]
    # A stop string that starts inside one token and ends inside a later one.
    ids = greedy["output_ids"]
    pieces = [engine.tokenizer.decode(ids[:i]) for i in range(len(ids) + 1)]
    start = len(pieces[10]) - 1
    stop = text[start : len(pieces[12]) + 1]
    assert len(stop) >= 3
    out = engine.generate(PROMPT, {**GREEDY, "stop": [stop]})
    assert out["meta_info"]["finish_reason"] == {"type": "stop", "matched": stop}
    assert out["text"] == text[: text.index(stop)]
    kept = engine.generate(PROMPT, {**GREEDY, "stop": [stop], "no_stop_trim": True})
    assert kept["text"].startswith(text[: text.index(stop) + len(stop)])


def test_stop_token_ids_and_max_new_tokens(engine, greedy):
    target = greedy["output_ids"][7]
    out = engine.generate(PROMPT, {**GREEDY, "stop_token_ids": [target]})
    first = greedy["output_ids"].index(target)
    assert out["output_ids"] == greedy["output_ids"][: first + 1]
    assert out["meta_info"]["finish_reason"] == {"type": "stop", "matched": target}
    short = engine.generate(PROMPT, {**GREEDY, "max_new_tokens": 5})
    assert short["output_ids"] == greedy["output_ids"][:5]


def test_eos_stops_unless_ignored_and_min_new_tokens(engine):
    chat = engine.tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    natural = engine.generate(chat, {"temperature": 0, "max_new_tokens": 64})
    eos = set(engine.server_info["eos_token_ids"])
    assert natural["meta_info"]["finish_reason"]["type"] == "stop"
    assert natural["output_ids"][-1] in eos
    n = len(natural["output_ids"])
    longer = engine.generate(
        chat, {"temperature": 0, "max_new_tokens": n + 8, "min_new_tokens": n + 8}
    )
    assert len(longer["output_ids"]) == n + 8
    assert not eos & set(longer["output_ids"])


def test_seed_reproduces_and_n_returns_several(engine):
    params = {"temperature": 1.0, "top_p": 0.95, "max_new_tokens": 24, "sampling_seed": 1234}
    a = engine.generate(PROMPT, params)
    b = engine.generate(PROMPT, params)
    c = engine.generate(PROMPT, {**params, "sampling_seed": 99})
    assert a["output_ids"] == b["output_ids"]
    assert a["output_ids"] != c["output_ids"]
    many = engine.generate(PROMPT, {**params, "n": 3})
    assert len(many) == 3 and many[0]["output_ids"] == a["output_ids"]
    assert len({tuple(m["output_ids"]) for m in many}) > 1


def test_logprobs_and_top_logprobs(engine, greedy):
    out = engine.generate(
        PROMPT,
        {**GREEDY, "max_new_tokens": 8},
        return_logprob=True,
        top_logprobs_num=3,
        logprob_start_len=0,
    )
    meta = out["meta_info"]
    assert [t for _, t, _ in meta["output_token_logprobs"]] == out["output_ids"]
    for (lp, tid, _), tops in zip(meta["output_token_logprobs"], meta["output_top_logprobs"]):
        assert len(tops) == 3 and tops[0][1] == tid  # greedy picks the most likely token
        assert lp == pytest.approx(tops[0][0]) and lp <= 0
        assert tops[0][0] >= tops[1][0] >= tops[2][0]
    prompt_ids = engine.tokenizer.encode(PROMPT)
    inputs = meta["input_token_logprobs"]
    assert [t for _, t, _ in inputs] == prompt_ids and inputs[0][0] is None
    assert all(lp <= 0 for lp, _, _ in inputs[1:])


def test_logit_bias_forces_a_token(engine):
    token = engine.tokenizer.encode(" banana")[0]
    out = engine.generate(PROMPT, {**GREEDY, "max_new_tokens": 6, "logit_bias": {str(token): 100}})
    assert out["output_ids"] == [token] * 6


def test_batch_of_prompts_and_input_ids(engine, greedy):
    ids = engine.tokenizer.encode(PROMPT)
    outs = engine.generate(input_ids=[ids, ids[:5]], sampling_params=GREEDY)
    assert outs[0]["output_ids"] == greedy["output_ids"]
    assert len(outs[1]["output_ids"]) == 40
    assert outs[0]["meta_info"]["cached_tokens"] + outs[1]["meta_info"]["cached_tokens"] > 0


def test_streaming_sync_and_async_match_the_final_text(engine, greedy):
    chunks = list(engine.generate(PROMPT, GREEDY, stream=True))
    assert len(chunks) > 1 and chunks[-1]["text"] == greedy["text"]
    assert all(a["text"] == b["text"][: len(a["text"])] for a, b in zip(chunks, chunks[1:]))

    async def collect():
        stream = await engine.async_generate(PROMPT, GREEDY, stream=True)
        return [c async for c in stream]

    async_chunks = asyncio.run(collect())
    assert async_chunks[-1]["text"] == greedy["text"]
    done = asyncio.run(engine.async_generate(PROMPT, GREEDY))
    assert done["output_ids"] == greedy["output_ids"]


def test_abandoned_stream_is_aborted_and_frees_its_kv(engine):
    stream = engine.generate(PROMPT, {**GREEDY, "max_new_tokens": 2000}, stream=True)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    for _ in range(50):
        stats = engine.get_stats()
        if stats["running"] == 0 and stats["waiting"] == 0:
            break
        asyncio.run(asyncio.sleep(0.1))
    engine.check_idle()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_new_tokens": -2}, "max_new_tokens"),
        ({"n": 0}, "n"),
        ({"bogus": 1}, "bogus"),
        ({"regex": "a", "json_schema": "{}"}, "only one of"),
    ],
)
def test_bad_sampling_params_raise_clearly(engine, params, message):
    with pytest.raises(ValueError, match=message):
        engine.generate(PROMPT, params)


def test_too_long_prompt_raises(engine):
    ids = [1] * (engine.server_info["context_len"] + 1)
    with pytest.raises(ValueError, match="context length"):
        engine.generate(input_ids=ids, sampling_params=GREEDY)
