"""Upstream SGLang's own client code, unchanged, against our real server: its frontend language
through RuntimeEndpoint (gen with stop_regex, select, fork, regex, streaming, run_batch) and
`python -m sglang.bench_serving` with the sglang, sglang-oai and sglang-oai-chat backends.

Upstream's client lives in ./.venv-upstream (built by ci/install_upstream_client.sh; the
package name `sglang` is ours too); its scripts are in upstream_client/. Results are checked
against the same server's plain /generate answers and the tokenizer."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).parent / "upstream_client"
QUESTION = "What is the capital of France?"  # as in upstream_client/lang_programs.py
STOP_REGEX = r"[.!?\n]"


@pytest.fixture(scope="module")
def upstream_python() -> Path:
    python = REPO / ".venv-upstream" / "bin" / "python"
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must have .venv-upstream: ci/install.sh runs install_upstream_client")
        pytest.skip(
            "no .venv-upstream (upstream SGLang's client): bash ci/install_upstream_client.sh"
        )
    return python


def run_upstream(python: Path, script: str, *args: str, timeout: float = 420) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(python), script, *args],
        cwd=CLIENT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script} {' '.join(args)} failed:\n{output[-6000:]}"
    return output


def generate(server, text: str, **sampling) -> dict:
    body = {"text": text, "sampling_params": {"temperature": 0, **sampling}}
    reply = httpx.post(server.base_url + "/generate", json=body, timeout=300)
    assert reply.status_code == 200, reply.text
    return reply.json()


def until_stop(text: str) -> str:
    match = re.search(STOP_REGEX, text)
    assert match, f"the reference answer never stops: {text!r}"
    return text[: match.start()]


def choice_logprob(server, tokenizer, prompt: str, choice: str) -> float:
    """The mean logprob of the tokens `choice` adds to `prompt` (token_length_normalized)."""
    ids = tokenizer.encode(prompt + choice)
    base = tokenizer.encode(prompt)
    shared = next((i for i, (a, b) in enumerate(zip(ids, base)) if a != b), len(base))
    body = {
        "input_ids": ids,
        "sampling_params": {"max_new_tokens": 0},
        "return_logprob": True,
        "logprob_start_len": shared,
    }
    meta = httpx.post(server.base_url + "/generate", json=body, timeout=300).json()["meta_info"]
    values = [lp for lp, _, _ in meta["input_token_logprobs"] if lp is not None]
    return sum(values) / len(values)


def test_frontend_language(server, tokenizer, upstream_python):
    output = run_upstream(upstream_python, "lang_programs.py", server.base_url)
    got = json.loads(output.split("RESULT:", 1)[1].splitlines()[0])

    # gen with stop_regex: the greedy answer cut at the first match, the pattern as matched
    answer = until_stop(generate(server, f"Q: {QUESTION}\nA:", max_new_tokens=24)["text"])
    assert got["answer"] == answer
    assert got["answer_streamed"] == answer
    assert got["answer_meta"]["finish_reason"] == {"type": "stop", "matched": STOP_REGEX}
    two = until_stop(generate(server, "Q: What is 2+2?\nA:", max_new_tokens=24)["text"])
    assert got["batch"] == [two, answer]

    # select: upstream's token-healing request reads token texts from input_token_logprobs
    choices = [" Paris", " Banana", " Tuesday"]
    prompt = f"Q: {QUESTION}\nA: The capital of France is"
    scores = [choice_logprob(server, tokenizer, prompt, c) for c in choices]
    assert got["city"] == choices[scores.index(max(scores))]
    for per_choice in got["city_meta"]["input_token_logprobs"]:
        for _, token_id, text in per_choice:
            assert text == tokenizer.decode([token_id])

    # fork: both branches continue the committed prefix greedily
    colors = generate(server, "Here is a list of three colors: red, green,", max_new_tokens=6)
    assert got["branches"] == [colors["text"]] * 2

    assert re.fullmatch(r"[0-9]{1,2}", got["legs"])


SHAREGPT = [
    {"id": str(i), "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
    for i, (q, a) in enumerate(
        [
            (
                "Write a haiku about the sea.",
                "Waves fold into foam, the tide keeps its old promise.",
            ),
            ("What is the boiling point of water?", "At sea level water boils at 100 degrees C."),
            ("Name three primary colors.", "Red, yellow and blue are the traditional three."),
            ("Explain what a prime number is.", "A prime has exactly two divisors: 1 and itself."),
        ]
    )
]


@pytest.mark.parametrize(
    "backend, dataset",
    [("sglang", "sharegpt"), ("sglang-oai", "random-ids"), ("sglang-oai-chat", "random-ids")],
)
def test_bench_serving(server, tokenizer, upstream_python, tmp_path, backend, dataset):
    tokenizer.save_pretrained(tmp_path / "tokenizer")  # bench_serving needs a tokenizer dir
    result = tmp_path / "result.jsonl"
    args = ["--backend", backend, "--base-url", server.base_url, "--num-prompts", "4"]
    args += ["--tokenizer", str(tmp_path / "tokenizer"), "--output-file", str(result)]
    args += ["--disable-tqdm", "--dataset-name", dataset]
    if dataset == "sharegpt":
        data = tmp_path / "sharegpt.json"
        data.write_text(json.dumps(SHAREGPT))
        args += ["--dataset-path", str(data), "--sharegpt-output-len", "8"]
    else:
        args += ["--random-input-len", "32", "--random-output-len", "8"]
        args += ["--random-range-ratio", "1.0"]
    output = run_upstream(upstream_python, "bench_serving.py", *args)
    assert "Serving Benchmark Result" in output, output[-3000:]
    record = json.loads(result.read_text().splitlines()[-1])
    assert record["backend"] == backend
    assert record["completed"] == 4, output[-3000:]
    assert record["total_output_tokens"] == 4 * 8  # ignore_eos: every request runs to 8
    assert record["total_output_tokens_retokenized"] > 0
    assert record["server_info"] is not None  # read from /server_info
