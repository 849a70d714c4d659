"""SGLang's request surface over HTTP: stop_regex, token texts in logprobs, n copies and
per-request stream_interval on /generate, and every field this server does not serve refused
by name (never silently dropped), on /generate and the OpenAI routes."""

from __future__ import annotations

import json
import re

import httpx
import openai
import pytest

PROMPT = "Once upon a time, in a small village by the sea,"
PATTERN = r"[,.;!?]"


def generate(server, body: dict) -> httpx.Response:
    return httpx.post(server.base_url + "/generate", json=body, timeout=300)


def greedy(server, text: str, n: int, **extra) -> dict:
    sampling = {"temperature": 0, "max_new_tokens": n, **extra}
    reply = generate(server, {"text": text, "sampling_params": sampling})
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_stop_regex_cuts_at_the_first_match(server, client, tokenizer):
    reference = greedy(server, PROMPT, 32)["text"]
    match = re.search(PATTERN, reference)
    assert match, f"the reference continuation has no {PATTERN}: {reference!r}"

    got = greedy(server, PROMPT, 32, stop_regex=PATTERN)
    assert got["text"] == reference[: match.start()]
    assert got["meta_info"]["finish_reason"] == {"type": "stop", "matched": PATTERN}

    kept = greedy(server, PROMPT, 32, stop_regex=[r"zzz\d", PATTERN], no_stop_trim=True)
    assert kept["text"] == tokenizer.decode(kept["output_ids"])
    assert reference.startswith(kept["text"]) and re.search(PATTERN, kept["text"])

    completion = client.completions.create(
        model="default",
        prompt=PROMPT,
        max_tokens=32,
        temperature=0,
        extra_body={"stop_regex": PATTERN},
    )
    assert completion.choices[0].text == reference[: match.start()]
    assert completion.choices[0].finish_reason == "stop"


def test_token_texts_in_logprobs(server, tokenizer):
    body = {
        "text": PROMPT,
        "sampling_params": {"temperature": 0, "max_new_tokens": 4},
        "return_logprob": True,
        "logprob_start_len": 0,
        "top_logprobs_num": 2,
    }
    plain = generate(server, body).json()["meta_info"]
    meta = generate(server, {**body, "return_text_in_logprobs": True}).json()["meta_info"]
    inputs, outputs = meta["input_token_logprobs"], meta["output_token_logprobs"]
    assert [t[1] for t in inputs] == tokenizer.encode(PROMPT)
    assert inputs[0][0] is None  # the first prompt token has no logprob (SGLang's shape)
    tuples = inputs + outputs + [t for tops in meta["output_top_logprobs"] for t in tops]
    tuples += [t for tops in meta["input_top_logprobs"] if tops for t in tops]
    for _, token_id, text in tuples:
        assert text == tokenizer.decode([token_id])
    assert len(meta["output_top_logprobs"][0]) == 2
    # the same numbers as without texts, whose texts are null
    assert [t[:2] for t in outputs] == [t[:2] for t in plain["output_token_logprobs"]]
    assert all(t[2] is None for t in plain["input_token_logprobs"] + plain["output_token_logprobs"])


def test_n_copies_on_generate(server):
    reference = generate(
        server,
        {
            "text": PROMPT,
            "sampling_params": {"temperature": 0, "max_new_tokens": 6},
            "return_logprob": True,
            "top_logprobs_num": 2,
        },
    ).json()
    reply = generate(
        server,
        {"text": PROMPT, "sampling_params": {"n": 2, "temperature": 0, "max_new_tokens": 6}},
    )
    assert reply.status_code == 200, reply.text
    copies = reply.json()
    assert copies[0]["output_ids"] == copies[1]["output_ids"]  # one batch: the same tokens
    # Against the separate request: equal, or apart from a near-tie (the copies may run in a
    # batch of another size, whose kernels round differently) at the first differing token.
    ids, ref_ids = copies[0]["output_ids"], reference["output_ids"]
    if ids != ref_ids:
        first = next(i for i, (a, b) in enumerate(zip(ids, ref_ids)) if a != b)
        top2 = reference["meta_info"]["output_top_logprobs"][first]
        # bfloat16 logits of magnitude 16-32 are 0.0625 apart: two such steps are a tie.
        assert abs(top2[0][0] - top2[1][0]) <= 0.125, (ids, ref_ids, top2)
    else:
        assert [c["text"] for c in copies] == [reference["text"]] * 2
    assert copies[0]["meta_info"]["id"] != copies[1]["meta_info"]["id"]

    body = {"text": [PROMPT, "Hello"], "sampling_params": {"n": 3, "max_new_tokens": 2}}
    assert len(generate(server, body).json()) == 6
    streamed = generate(server, {**body, "text": PROMPT, "stream": True})
    assert streamed.status_code == 400 and "n" in streamed.json()["error"]["message"]


def test_stream_interval_per_request(server):
    body = {
        "text": PROMPT,
        "stream": True,
        "sampling_params": {
            "max_new_tokens": 8,
            "ignore_eos": True,
            "temperature": 0,
            "stream_interval": 3,
        },
    }
    sizes = []
    with httpx.stream("POST", server.base_url + "/generate", json=body, timeout=300) as r:
        for line in r.iter_lines():
            if line.startswith("data:") and line != "data: [DONE]":
                sizes.append(len(json.loads(line[5:])["output_ids"]))
    assert sizes == [3, 6, 8]


@pytest.mark.parametrize(
    "path, body, name",
    [
        (
            "/generate",
            {"text": "hi", "sampling_params": {"structural_tag": "{}"}},
            "structural_tag",
        ),
        (
            "/generate",
            {"text": "hi", "sampling_params": {"custom_params": {"a": 1}}},
            "custom_params",
        ),
        ("/generate", {"text": "hi", "sampling_params": {"beam_width": 4}}, "beam_width"),
        ("/generate", {"text": "hi", "sampling_params": {"stop_regex": "(a"}}, "stop_regex"),
        ("/generate", {"text": "hi", "image_data": "data:image/png;base64,AAAA"}, "image_data"),
        ("/generate", {"text": "hi", "lora_path": "adapter"}, "lora_path"),
        ("/generate", {"text": "hi", "return_hidden_states": True}, "return_hidden_states"),
        ("/generate", {"text": "hi", "token_ids_logprob": [1, 2]}, "token_ids_logprob"),
        ("/generate", {"text": "hi", "temprature": 0}, "temprature"),
        ("/v1/completions", {"prompt": "hi", "best_of": 3}, "best_of"),
        ("/v1/completions", {"prompt": "hi", "suffix": "end"}, "suffix"),
        ("/v1/completions", {"prompt": "hi", "lora_path": "adapter"}, "lora_path"),
        ("/v1/completions", {"prompt": "hi", "stop_regex": 5}, "stop_regex"),
        ("/v1/chat/completions", {"continue_final_message": True}, "continue_final_message"),
        ("/v1/chat/completions", {"reasoning_effort": "high"}, "reasoning_effort"),
        ("/v1/chat/completions", {"return_hidden_states": True}, "return_hidden_states"),
        ("/v1/chat/completions", {"modalities": ["text", "audio"]}, "modalities"),
        ("/v1/chat/completions", {"frequency_penalty_": 1}, "frequency_penalty_"),
    ],
)
def test_unserved_fields_are_refused_by_name(server, path, body, name):
    if path == "/v1/chat/completions":
        body = {"messages": [{"role": "user", "content": "hi"}], **body}
    if path != "/generate":
        body = {**body, "max_tokens": 2}
    reply = httpx.post(server.base_url + path, json=body, timeout=60)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert name in error["message"] and error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ],
)
def test_non_text_message_parts_are_refused_by_type(client, part):
    content = [{"type": "text", "text": "What is this?"}, part]
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": content}], max_tokens=2
        )
    assert part["type"] in str(e.value) and "messages[0].content[1]" in str(e.value)


def test_fields_that_ask_for_nothing_are_accepted(server, client):
    body = {
        "text": "hi",
        "sampling_params": {
            "max_new_tokens": 1,
            "structural_tag": None,
            "custom_params": {},
            "beam_width": 1,
            "watermark": None,
        },
        "lora_path": None,
        "return_hidden_states": False,
        "log_metrics": True,
    }
    assert generate(server, body).status_code == 200
    completion = client.completions.create(
        model="default", prompt="hi", max_tokens=1, best_of=1, extra_body={"lora_path": None}
    )
    assert completion.choices[0].finish_reason == "length"
    text = [{"type": "text", "text": "Say hi"}]
    chat = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": text}], max_tokens=1, user="u1"
    )
    assert chat.choices[0].finish_reason == "length"


def test_continue_final_message(server, client, tokenizer):
    messages = [
        {"role": "user", "content": "Name a color."},
        {"role": "assistant", "content": "My favorite color is"},
    ]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    assert prompt.endswith("My favorite color is")
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    r = client.chat.completions.create(
        model="default",
        messages=messages,
        max_tokens=4,
        temperature=0,
        extra_body={"continue_final_message": True},
    )
    assert r.usage.prompt_tokens == len(ids)
    body = {"input_ids": ids, "sampling_params": {"temperature": 0, "max_new_tokens": 4}}
    assert r.choices[0].message.content == generate(server, body).json()["text"]
