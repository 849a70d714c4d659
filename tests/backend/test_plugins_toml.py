"""plugins.toml agrees with the packages it lists: their pyprojects, core's extras, and what
discovery finds installed."""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

import pytest
import tomllib
from sglang.backend.discovery import discover
from sglang.backend.hookspecs import ENTRY_POINT_GROUP

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = tomllib.loads((ROOT / "plugins.toml").read_text())
CORE = tomllib.loads((ROOT / "core" / "pyproject.toml").read_text())
FIRST_PARTY = PLUGINS["backends"]
ALL_ROWS = {**FIRST_PARTY, **PLUGINS.get("examples", {})}
FIELDS = {"name", "distribution", "entry_point", "path", "device_type", "kind", "status"}
STATUSES = {"stable", "device-verified", "emulated", "unverified", "probe-only", "example"}


def pyproject(row: dict) -> dict:
    return tomllib.loads((ROOT / row["path"] / "pyproject.toml").read_text())["project"]


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def test_first_party_backends_are_listed():
    assert set(FIRST_PARTY) == {"reference", "xeon", "cuda", "rocm", "ascend", "tpu"}


@pytest.mark.parametrize("key", sorted(ALL_ROWS))
def test_row_is_complete(key):
    row = ALL_ROWS[key]
    assert FIELDS <= set(row), f"{key}: missing {sorted(FIELDS - set(row))}"
    assert row["name"] == key
    assert row["status"] in STATUSES
    assert row["kind"] in ("accelerator", "cpu", "fallback")


@pytest.mark.parametrize("key", sorted(ALL_ROWS))
def test_pyproject_declares_the_entry_point(key):
    row = ALL_ROWS[key]
    project = pyproject(row)
    assert project["name"] == row["distribution"]
    declared = project["entry-points"][ENTRY_POINT_GROUP]
    assert declared == {row["name"]: row["entry_point"]}
    if row["distribution"] != "sglang":
        assert "sglang" in {requirement_name(dep) for dep in project["dependencies"]}


def test_core_extras_name_each_backend_distribution():
    extras = CORE["project"]["optional-dependencies"]
    listed = {row["extra"]: row["distribution"] for row in FIRST_PARTY.values() if "extra" in row}
    assert {extra: [dist] for extra, dist in listed.items()} == {
        extra: deps for extra, deps in extras.items() if extra in listed
    }
    backend_extras = {e for e, deps in extras.items() if any(d.startswith("sglang-") for d in deps)}
    assert backend_extras == set(listed), "an extra pulls a backend plugins.toml does not list"
    assert "extra" not in FIRST_PARTY["reference"], "the reference backend is built into sglang"


@pytest.mark.parametrize("key", sorted(ALL_ROWS))
def test_installed_metadata_matches(key):
    row = ALL_ROWS[key]
    try:
        dist = md.distribution(row["distribution"])
    except md.PackageNotFoundError:
        pytest.skip(f"{row['distribution']} is not installed")
    eps = {ep.name: ep.value for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP}
    assert eps == {row["name"]: row["entry_point"]}


@pytest.fixture(scope="module")
def found():
    return discover()


@pytest.mark.parametrize("key", sorted(ALL_ROWS))
def test_discovered_backend_matches(found, key):
    row = ALL_ROWS[key]
    b = found.backends.get(row["name"])
    if b is None:
        pytest.skip(f"{row['distribution']} is not installed")
    assert b.info is not None, b.error
    assert b.info.device_type == row["device_type"]
    assert b.info.kind == row["kind"]
    assert b.entry_point == row["entry_point"]
    if row["status"] == "probe-only":
        assert b.kernel_count == 0, f"{key} registers kernels: update its status in plugins.toml"
    # `sglang backends` and docs/ops.md say how the kernels were verified: in the same words.
    assert b.info.verification, f"{key}: BackendInfo.verification is empty"
    if row["status"] in ("emulated", "unverified", "example"):
        assert b.info.verification.startswith(row["status"]), (key, b.info.verification)


@pytest.mark.parametrize(
    "key", sorted(k for k, r in ALL_ROWS.items() if r["status"] == "device-verified")
)
def test_device_verified_backend_has_a_passing_conformance_report(key):
    import json

    name = ALL_ROWS[key]["name"]
    reports = sorted((ROOT / "docs" / "conformance").glob(f"{name}*.json"))
    assert reports, f"{key} is device-verified but docs/conformance/ has no {name}*.json report"
    for path in reports:
        report = json.loads(path.read_text())
        section = report["backends"][name]
        summary = section["summary"]
        assert summary["passed"] > 0, f"{path.name}: {summary}"
        # A failure on the device is acceptable only once the backend's manifest lists it as
        # an expected failure (with its reason): the next run on the device reports it so.
        failed = [c for c in section.get("checks", []) if c["status"] == "failed"]
        assert len(failed) == summary["failed"], f"{path.name}: {summary}"
        if failed:
            manifest = discover().backends[name].conformance_manifest()
            unlisted = [
                c["id"] for c in failed if not manifest.expected_failure(c["id"], c["kernel"])
            ]
            assert not unlisted, f"{path.name}: failures not in the manifest: {unlisted}"
