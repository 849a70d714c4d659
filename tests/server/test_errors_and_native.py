"""Bad input gets the right 4xx with an OpenAI-style body naming the problem, and the server
stays healthy; the native routes and /metrics answer in SGLang's shapes."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

MSG = [{"role": "user", "content": "hi"}]


def post(server, path, body=None, content=None, headers=None):
    return httpx.post(
        server.base_url + path, json=body, content=content, headers=headers, timeout=60
    )


@pytest.mark.parametrize(
    "path, body, status, needle",
    [
        ("/v1/chat/completions", {"messages": MSG, "max_tokens": 0}, 400, "max_tokens"),
        ("/v1/chat/completions", {"messages": MSG, "max_tokens": -5}, 400, "max_tokens"),
        ("/v1/chat/completions", {"messages": MSG, "temperature": -0.5}, 400, "temperature"),
        ("/v1/chat/completions", {"messages": MSG, "top_p": 0}, 400, "top_p"),
        ("/v1/chat/completions", {"messages": MSG, "top_p": 1.5}, 400, "top_p"),
        ("/v1/chat/completions", {"messages": MSG, "n": 0}, 400, "n"),
        ("/v1/chat/completions", {"messages": MSG, "model": "gpt-9"}, 404, "gpt-9"),
        ("/v1/chat/completions", {"messages": []}, 400, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}, 400, "wizard"),
        ("/v1/chat/completions", {"messages": "hello"}, 400, "messages"),
        ("/v1/chat/completions", {"messages": MSG, "temperature": "hot"}, 400, "temperature"),
        ("/v1/completions", {"prompt": "hi", "max_tokens": "many"}, 400, "max_tokens"),
        ("/v1/completions", {"prompt": "word " * 9000}, 400, "context length"),
        ("/v1/completions", {"prompt": []}, 400, "prompt"),
        ("/generate", {"text": "hi", "sampling_params": {"temperature": -1}}, 400, "temperature"),
        ("/generate", {"sampling_params": {}}, 400, "text or input_ids"),
        (
            "/generate",
            {"text": "hi", "sampling_params": {"regex": "a", "json_schema": "{}"}},
            400,
            "only one of",
        ),
        ("/generate", {"input_ids": [1, 999999]}, 400, "input_ids"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(server, path, body, status, needle):
    r = post(server, path, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert needle in err["message"] or needle == err.get("param"), err
    assert err["type"]
    assert httpx.get(server.base_url + "/health").status_code == 200


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/generate"])
def test_malformed_json(server, path):
    r = post(server, path, content=b'{"messages": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


def test_native_generate_single_batch_stream_and_logprobs(server, tokenizer):
    one = post(
        server,
        "/generate",
        {
            "text": "The capital of France is",
            "sampling_params": {"max_new_tokens": 6, "temperature": 0},
        },
    ).json()
    assert set(one) == {"text", "output_ids", "meta_info"} and len(one["output_ids"]) == 6
    assert one["text"] == tokenizer.decode(one["output_ids"])
    batch = post(
        server, "/generate", {"text": ["a", "b"], "sampling_params": {"max_new_tokens": 3}}
    ).json()
    assert isinstance(batch, list) and len(batch) == 2
    with httpx.stream(
        "POST",
        server.base_url + "/generate",
        timeout=60,
        json={
            "text": "The capital of France is",
            "stream": True,
            "sampling_params": {"max_new_tokens": 6, "temperature": 0},
        },
    ) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data:")]
    assert lines[-1] == "data: [DONE]"
    import json

    last = json.loads(lines[-2][5:])
    assert last["text"] == one["text"]  # cumulative text, as SGLang streams it
    lp = post(
        server,
        "/generate",
        {
            "text": "Hello there",
            "return_logprob": True,
            "logprob_start_len": 0,
            "top_logprobs_num": 2,
            "sampling_params": {"max_new_tokens": 3},
        },
    ).json()
    meta = lp["meta_info"]
    assert len(meta["output_token_logprobs"]) == 3 and len(meta["output_top_logprobs"][0]) == 2
    assert [t for _, t, _ in meta["input_token_logprobs"]] == tokenizer.encode("Hello there")


def test_tokenize_detokenize_info_routes(server, tokenizer):
    t = post(server, "/tokenize", {"prompt": "Hello, world!"}).json()
    assert t["tokens"] == tokenizer.encode("Hello, world!") and t["count"] == len(t["tokens"])
    assert post(server, "/detokenize", {"tokens": t["tokens"]}).json()["text"] == "Hello, world!"
    info = httpx.get(server.base_url + "/get_model_info").json()
    assert info["is_generation"] and info["architecture"] == "LlamaForCausalLM"
    sinfo = httpx.get(server.base_url + "/get_server_info").json()
    assert sinfo["max_total_tokens"] == 16384 and 0 <= sinfo["scheduler"]["kv_usage"] <= 1
    assert httpx.get(server.base_url + "/health_generate", timeout=60).status_code == 200


def test_abort_request_and_flush_cache(server):
    import threading

    result = {}

    def long_request():
        result["r"] = post(
            server,
            "/generate",
            {
                "text": "Count forever:",
                "rid": "to-abort",
                "sampling_params": {"max_new_tokens": 4000, "ignore_eos": True},
            },
        )

    t = threading.Thread(target=long_request)
    t.start()
    import time

    time.sleep(2)
    assert post(server, "/abort_request", {"rid": "to-abort"}).status_code == 200
    t.join(timeout=60)
    assert result["r"].json()["meta_info"]["finish_reason"]["type"] == "abort"
    assert post(server, "/flush_cache").status_code == 200


def test_metrics_parse(server):
    post(server, "/v1/completions", {"prompt": "Hi", "max_tokens": 3})
    text = httpx.get(server.base_url + "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    exposed = {s.name for f in families.values() for s in f.samples}
    for name in (  # as SGLang exposes them (the server runs with --enable-metrics)
        "sglang:prompt_tokens_total",
        "sglang:generation_tokens_total",
        "sglang:cached_tokens_total",
        "sglang:time_to_first_token_seconds_bucket",
        "sglang:inter_token_latency_seconds_bucket",
        "sglang:time_per_output_token_seconds_bucket",
        "sglang:e2e_request_latency_seconds_count",
        "sglang:num_running_reqs",
        "sglang:num_queue_reqs",
        "sglang:num_used_tokens",
        "sglang:token_usage",
        "sglang:max_total_num_tokens",
        "sglang:gen_throughput",
        "sglang:cache_hit_rate",
    ):
        assert name in exposed, name
    generated = [
        s.value for s in families["sglang:generation_tokens"].samples if s.name.endswith("_total")
    ]
    assert generated and generated[0] >= 3
    kv = [s.value for s in families["sglang:max_total_num_tokens"].samples]
    assert kv == [httpx.get(server.base_url + "/get_server_info").json()["scheduler"]["kv_total"]]
