"""benchmarks/sweep_decode_launch.py on the CPU: every preset names launch tables (and keys)
the backends have, the table edits it makes are the ones launch_overrides.apply replays, and a
tiny sweep runs end to end on xeon (whose kernels read none of the tables: the machinery only).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import os
import subprocess
import sys

import pytest

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks")
sys.path.insert(0, BENCH)
sweep = importlib.import_module("sweep_decode_launch")
apply_launches = importlib.import_module("launch_overrides").apply


@pytest.mark.parametrize("preset", sorted(sweep.PRESETS))
def test_preset_axes_name_real_tables(preset):
    for axis in sweep.PRESETS[preset]["axes"]:
        table = sweep._table(axis)
        assert axis["values"], axis
        if "tier" in axis:
            assert isinstance(table, list) and all(len(e) == 2 for e in table)
            continue
        target = table[axis["key"]] if "key" in axis else table
        if axis["table"] == "PACKED_LAUNCH":  # overrides of DECODE_LAUNCH: any of its keys
            target = importlib.import_module(axis["module"]).DECODE_LAUNCH[axis["key"]]
        for value in axis["values"]:
            assert set(value) <= set(target) | {"mma", "waves", "early", "split"}, (axis, value)


def test_tiers_split_off_and_replace():
    tiers = [(1 << 20, {"block_n": 4}), (12 << 20, {"block_n": 4, "split_k": "auto"})]
    split = sweep.with_tier(tiers, 9 << 20, {"block_n": 8})
    # the new tier starts from the tier that held its sizes, and keeps the list ascending
    assert split == [
        [1 << 20, {"block_n": 4}],
        [9 << 20, {"block_n": 8, "split_k": "auto"}],
        [12 << 20, {"block_n": 4, "split_k": "auto"}],
    ]
    again = sweep.with_tier(split, 9 << 20, {"split_k": 1})
    assert again[1] == [9 << 20, {"block_n": 8, "split_k": 1}]
    assert tiers[1][1] == {"block_n": 4, "split_k": "auto"}  # the input is not edited


def test_overrides_replay_through_launch_overrides(tmp_path):
    """The best tables, written as overrides, put launch_overrides.apply's tables where the
    sweep had them (nested keys and tier lists included); untouched tables are left out."""
    axes = [a for a in sweep.PRESETS["qwen3"]["axes"] if a["table"] != "PDL_LAUNCH"]
    saved = sweep.snapshot(axes)
    try:
        best = copy.deepcopy(saved)
        names = ("gemv tier: router", "moe gate_up", "dense cuda gemv (bf16 weights at one row)")
        for axis in [a for a in axes if a["name"] in names]:  # a tier, a nested key, a table
            key = (axis["module"], axis["table"])
            best[key] = sweep.applied(axis, axis["values"][-1], best[key])
        written = sweep.overrides(best, saved)
        assert set(written) == {
            "gemv.SMALL_LAUNCH",
            "moe_decode.DECODE_LAUNCH",
            "gemv_dense_cuda.GEMV_DENSE_CUDA_LAUNCH",
        }
        path = tmp_path / "best.json"
        path.write_text(json.dumps(written))
        apply_launches(str(path))
        for key, value in best.items():
            now = json.loads(json.dumps(getattr(importlib.import_module(key[0]), key[1])))
            assert now == json.loads(json.dumps(value)), key
    finally:
        sweep.restore(saved)
    for key, value in saved.items():
        assert getattr(importlib.import_module(key[0]), key[1]) == value


def test_tiny_sweep_runs_on_xeon(tmp_path):
    spec = tmp_path / "spec.json"
    axis = {"name": "moe down", "module": sweep.MOE, "table": "DECODE_LAUNCH", "key": "down",
            "values": [{"split": False}, {"num_stages": 2}]}  # fmt: skip
    spec.write_text(json.dumps([axis]))
    out, best = tmp_path / "sweep.jsonl", tmp_path / "best.json"
    r = subprocess.run(
        [sys.executable, os.path.join(BENCH, "sweep_decode_launch.py"), "--preset", "qwen3",
         "--tiny", "--device", "xeon", "--spec", str(spec), "--reps", "2", "--context", "32",
         "--out", str(out), "--best", str(best), "--profile", str(tmp_path / "prof")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["axis"] for row in rows] == ["defaults", "moe down", "moe down", "summary"]
    assert all(row["step_ms"] > 0 for row in rows[:3])
    summary = rows[-1]
    assert summary["best_ms"] > 0 and summary["defaults_again_ms"] > 0
    assert json.loads(best.read_text()) == summary["best"]
    for kind in ("pdl", "nopdl"):  # the steps' op table, here the CPU's (xeon)
        table = (tmp_path / f"prof-{kind}.txt").read_text()
        assert "20 batch-1 decode steps" in table and "Self CPU" in table
