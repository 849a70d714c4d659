"""bench_one_batch on a tiny random Llama given as config.json only, with --load-format dummy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sglang import bench_one_batch


def test_static_batches_on_a_config_only_model(tiny_llama_dir, tmp_path, capsys):
    pytest.importorskip("sglang_xeon", reason="the xeon backend is not installed")
    model = Path(tiny_llama_dir)
    assert sorted(p.name for p in model.iterdir()) == ["config.json"]
    out = tmp_path / "one_batch.jsonl"
    results = bench_one_batch.main(
        [
            "--model-path",
            str(model),
            "--load-format",
            "dummy",
            "--device",
            "xeon",
            "--log-level",
            "warning",
            "--batch-size",
            "1",
            "3",
            "--input-len",
            "8",
            "20",
            "--output-len",
            "4",
            "--result-filename",
            str(out),
            "--run-name",
            "t",
        ]
    )
    assert [(r["batch_size"], r["input_len"], r["output_len"]) for r in results] == [
        (1, 8, 4),
        (1, 20, 4),
        (3, 8, 4),
        (3, 20, 4),
    ]
    for r in results:
        bs, il, ol = r["batch_size"], r["input_len"], r["output_len"]
        assert len(r["decode_latencies"]) == ol - 1
        assert r["prefill_throughput"] == pytest.approx(bs * il / r["prefill_latency"])
        assert r["median_decode_throughput"] == pytest.approx(bs / r["median_decode_latency"])
        assert r["total_latency"] == pytest.approx(
            r["prefill_latency"] + sum(r["decode_latencies"])
        )
        assert r["overall_throughput"] == pytest.approx(bs * (il + ol) / r["total_latency"])
    printed = capsys.readouterr().out
    assert printed.count("Prefill. latency:") == 5  # warm-up + 4 combinations
    assert "Decode.  median latency:" in printed and "Total. latency:" in printed
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 4 and {line["run_name"] for line in lines} == {"t"}
    assert lines[0]["load_format"] == "dummy" and lines[0]["model_path"] == str(model)


def test_a_batch_that_does_not_fit_the_context_is_refused(tiny_llama_dir, tmp_path):
    pytest.importorskip("sglang_xeon", reason="the xeon backend is not installed")
    model = tiny_llama_dir
    with pytest.raises(ValueError, match="exceeds the context length"):
        bench_one_batch.main(
            [
                "--model-path",
                str(model),
                "--load-format",
                "dummy",
                "--device",
                "xeon",
                "--log-level",
                "warning",
                "--input-len",
                "1020",
                "--output-len",
                "8",
                "--result-filename",
                str(tmp_path / "r.jsonl"),
                "--skip-warmup",
            ]
        )
