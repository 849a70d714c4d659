"""bench_serving end to end against a real OpenAI-compatible server: llama-cpp-python's, on the
default GGUF model (another project's server, so the client is tested independently of ours).
Skipped, with the reason, where llama-cpp-python's server extras are missing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from sglang import bench_serving

SERVER_START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    try:
        import llama_cpp.server.app  # noqa: F401
    except ImportError as e:
        pytest.skip(
            f"llama-cpp-python's server extras are missing ({e}); "
            "pip install sse-starlette starlette-context pydantic-settings"
        )
    from sglang.model_loader import DefaultModelMissing, default_model_path

    try:
        model = default_model_path()
    except DefaultModelMissing as e:
        pytest.skip(str(e))
    port = free_port()
    log = open(tmp_path_factory.mktemp("llama") / "server.log", "w")
    # interrupt_requests off: by default a new request cuts the stream of the running one.
    # One thread: the test checks the client, and 2-thread compute waits out time slices on a
    # shared 2-core machine.
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        "1",
        "--interrupt_requests",
        "False",
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited ({proc.returncode}); see {log.name}")
            try:
                urllib.request.urlopen(f"{base}/v1/models", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama.cpp server not up after {SERVER_START_TIMEOUT_S} s")
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_openai_backend_against_llama_cpp(llama_server, tokenizer_dir, tmp_path, capsys):
    out = tmp_path / "serving.jsonl"
    common = [
        "--backend",
        "openai",
        "--base-url",
        llama_server,
        "--tokenizer",
        tokenizer_dir,
        "--dataset-name",
        "random",
        "--random-input-len",
        "32",
        "--random-output-len",
        "8",
        "--random-range-ratio",
        "0.5",
        "--output-file",
        str(out),
        "--disable-tqdm",
    ]
    record = bench_serving.main([*common, "--num-prompts", "8"])
    printed = capsys.readouterr().out
    assert "Serving Benchmark Result" in printed and "Median TTFT (ms):" in printed
    assert record["completed"] == 8 and record["failed"] == 0
    assert record["model"].endswith(".gguf")  # discovered from /v1/models
    # llama.cpp ignores ignore_eos and sends no usage: counts come from re-tokenizing
    assert 8 <= record["total_output_tokens"] <= 80
    assert record["total_output_tokens"] == record["total_output_tokens_retokenized"]
    assert 8 * 16 <= record["total_input_tokens"] <= 8 * 32
    assert record["duration"] > 0 and record["output_throughput"] > 0
    assert record["mean_ttft_ms"] > 0 and record["p99_e2e_latency_ms"] >= record["p90_ttft_ms"]

    # Poisson arrivals and a concurrency cap, appended as a second line.
    second = bench_serving.main(
        [
            *common,
            "--num-prompts",
            "4",
            "--request-rate",
            "20",
            "--max-concurrency",
            "2",
            "--output-details",
            "--warmup-requests",
            "0",
        ]
    )
    assert second["completed"] == 4 and second["max_concurrency"] == 2
    assert len(second["ttfts"]) == 4 and len(second["generated_texts"]) == 4
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2
    assert lines[0]["request_rate"] == "inf" and lines[1]["request_rate"] == 20.0
    for key in (
        "backend",
        "dataset_name",
        "num_prompts",
        "seed",
        "timestamp",
        "request_throughput",
        "input_throughput",
        "output_throughput",
        "concurrency",
        "median_itl_ms",
        "p95_tpot_ms",
        "std_e2e_latency_ms",
    ):
        assert key in lines[0]


def test_sglang_flag_names_parse():
    args = bench_serving.parse_args(
        "--backend sglang --host h --port 1 --model m --tokenizer t --dataset-name "
        "generated-shared-prefix --dataset-path p --num-prompts 3 --random-input-len 1 "
        "--random-output-len 2 --random-range-ratio 0.5 --gsp-num-groups 2 "
        "--gsp-prompts-per-group 3 --gsp-system-prompt-len 4 --gsp-question-len 5 "
        "--gsp-output-len 6 --request-rate 2.5 --max-concurrency 4 --seed 7 --output-file o "
        "--disable-ignore-eos --warmup-requests 0 --sharegpt-output-len 9 "
        "--disable-stream --extra-request-body {} --apply-chat-template".split()
    )
    assert args.request_rate == 2.5 and args.gsp_output_len == 6 and args.disable_ignore_eos
    assert bench_serving.parse_args([]).request_rate == float("inf")
    assert os.path.basename(bench_serving.__file__) == "bench_serving.py"
