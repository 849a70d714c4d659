"""docs/ops.md is the support matrix (`sglang conformance --mode support`) of the reference and the
first-party backends listed in plugins.toml, as the registries say now. Regenerate it with the
command written at its top when this fails."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib
from sglang.backend.discovery import discover
from sglang.conformance.support import FALLBACK, UNSUPPORTED, markdown, matrix
from sglang.ops import all_specs

ROOT = Path(__file__).resolve().parents[2]


def first_party() -> list[str]:
    plugins = tomllib.loads((ROOT / "plugins.toml").read_text())["backends"]
    return [p["name"] for p in plugins.values()]


@pytest.fixture(scope="module")
def doc():
    found = discover()
    missing = [n for n in first_party() if n not in found.backends]
    if missing:
        pytest.skip(f"first-party backends not installed here: {missing}")
    return matrix(found, first_party())


def test_docs_ops_md_matches_the_registries(doc):
    written = (ROOT / "docs" / "ops.md").read_text()
    assert written == markdown(doc), (
        "docs/ops.md is stale: sglang conformance --mode support --backend "
        f"{','.join(first_party())} --docs docs/ops.md"
    )


def test_every_op_and_backend_has_a_cell(doc):
    ops = {row["op"] for row in doc["rows"]}
    assert ops == {s.name for s in all_specs()}
    for row in doc["rows"]:
        assert set(row["cells"]) == set(first_party())
        assert row["cells"]["reference"] not in (FALLBACK, UNSUPPORTED, "?"), row
    # Probe-only backends have no kernels: every op they run falls back to the reference.
    plugins = tomllib.loads((ROOT / "plugins.toml").read_text())["backends"]
    for name in (p["name"] for p in plugins.values() if p["status"] == "probe-only"):
        assert {row["cells"][name] for row in doc["rows"]} <= {FALLBACK, UNSUPPORTED}, name
    # The GPU backends share their Triton kernels: the same kernel names serve the same cells.
    for row in doc["rows"]:
        cuda, rocm = set(row["cells"]["cuda"].split(", ")), set(row["cells"]["rocm"].split(", "))
        assert {n for n in cuda if n.startswith("triton_")} <= rocm | {UNSUPPORTED}, row


def test_cells_name_the_registered_kernels(doc):
    found = discover()
    xeon = {k.name.removeprefix("xeon.") for k in found.registry.kernels(backend="xeon")}
    named = {n for row in doc["rows"] for n in row["cells"]["xeon"].split(", ")}
    assert named - {FALLBACK, UNSUPPORTED} <= xeon
    assert xeon <= named, "every xeon kernel appears in the matrix"
