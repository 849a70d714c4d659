"""Apply the decode GEMV launches that `bench_decode_gemv.py --pick-best FILE` chose, in this
process, before a benchmark builds its engine (the kernels read their module's launch table at
each call). A tuning aid for the benchmark scripts (`--launch-overrides FILE`), not an engine
setting: what wins becomes the module default in the code."""

from __future__ import annotations

import importlib
import json


def apply(path: str | None) -> dict:
    """Update each family's launch table with its best launch; route one-row calls to the
    GEMV (the family's USE_GEMV switch) only where it beat the path it replaces. Returns what
    was applied, for the benchmark's log."""
    if not path:
        return {}
    with open(path) as f:
        best = json.load(f)
    applied = {}
    for fam, b in best.items():
        module = importlib.import_module(b["module"])
        if "value" in b:  # a table replaced whole (gemv.SMALL_LAUNCH's tiers)
            setattr(module, b["table"], b["value"])
            entry = {"value": b["value"]}
        else:
            table = getattr(module, b["table"])
            table.update(b["launch"])
            entry = {"launch": dict(table)}
        if b.get("switch"):
            use = b["us"] < b["old_us"]
            importlib.import_module(b["switch"]).USE_GEMV = use
            entry["use_gemv"] = use
        applied[fam] = entry
        print(f"launch override {fam}: {entry}", flush=True)
    return applied
