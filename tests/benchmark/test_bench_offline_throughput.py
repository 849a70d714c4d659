"""bench_offline_throughput end to end: the in-process Engine on the default model (xeon)."""

from __future__ import annotations

import json

import pytest
from sglang import bench_offline_throughput
from sglang.benchmark.datasets import random_lengths


def test_random_dataset_on_the_default_model(tokenizer_dir, tmp_path, monkeypatch, capsys):
    pytest.importorskip("sglang_xeon", reason="the xeon backend is not installed")
    # One thread per process: on a shared 2-core machine, 2-thread GEMMs wait out scheduler
    # time slices (~16 ms a call) whenever another process runs.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "offline.jsonl"
    record = bench_offline_throughput.main(
        [
            "--device",
            "xeon",
            "--log-level",
            "warning",
            "--tokenizer-path",
            tokenizer_dir,
            "--max-total-tokens",
            "4096",
            "--dataset-name",
            "random",
            "--num-prompts",
            "8",
            "--random-input-len",
            "32",
            "--random-output-len",
            "8",
            "--seed",
            "3",
            "--result-filename",
            str(out),
        ]
    )
    ins, outs = random_lengths(8, 32, 8, 0.0, seed=3)
    assert record["successful_requests"] == 8 and record["failed_requests"] == 0
    assert record["total_input_tokens"] == sum(ins)  # sent as token ids: exact lengths
    assert record["total_output_tokens"] == sum(outs)  # ignore_eos: every request runs out
    assert record["output_throughput"] == pytest.approx(sum(outs) / record["total_latency"])
    assert record["engine"]["backend"] == "xeon"
    assert "Offline Throughput Benchmark Result" in capsys.readouterr().out
    line = json.loads(out.read_text())
    assert line["request_throughput"] == record["request_throughput"]
