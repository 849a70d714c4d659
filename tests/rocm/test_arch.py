"""The rocm backend's architecture facts and launch tables: gfx names from the KFD topology,
LDS-driven pipeline stages, wavefront-scaled warps, capabilities by architecture."""

from __future__ import annotations

import pytest

pytest.importorskip("sglang_rocm")
from sglang_rocm import arch, plugin  # noqa: E402
from sglang_rocm.tables import pipeline_stages, rocm_target  # noqa: E402
from sglang_triton.target import warps  # noqa: E402


def test_gfx_names():
    assert arch.gfx_name(90402) == "gfx942"
    assert arch.gfx_name(90010) == "gfx90a"
    assert arch.gfx_name(90500) == "gfx950"


def test_visible_archs_read_the_topology(tmp_path):
    for i, version in enumerate((0, 90402, 90402)):  # node 0 is the CPU
        node = tmp_path / str(i)
        node.mkdir()
        (node / "properties").write_text(f"cpu_cores_count 0\ngfx_target_version {version}\n")
    assert arch.visible_archs(str(tmp_path / "*" / "properties")) == ["gfx942", "gfx942"]


def test_tables_follow_lds_and_wave_size():
    assert pipeline_stages(64 << 10) == 1  # MI300X: one stage of 16 KiB K and V tiles + Q
    assert pipeline_stages(160 << 10) == 2  # MI355X
    mi300 = rocm_target(arch.CHIPS["gfx942"])
    assert mi300.launch_for("attention.extend")["num_stages"] == 1
    assert rocm_target(arch.CHIPS["gfx950"]).launch_for("attention.extend")["num_stages"] == 2
    assert warps(4, mi300.launch_for("norm")) == 2  # 4 x 32 threads = 2 wavefronts of 64
    assert warps(1, mi300.launch_for("norm")) == 1


@pytest.mark.parametrize(
    "gfx, fp8", [("gfx942", {"e4m3fnuz", "e5m2fnuz"}), ("gfx950", {"e4m3fn", "e5m2"})]
)
def test_capabilities_by_arch(monkeypatch, gfx, fp8):
    monkeypatch.setattr(plugin, "present_arch", lambda: gfx)
    monkeypatch.delenv("SGLANG_ROCM_EMULATE", raising=False)
    caps = plugin.sglang_backend_capabilities()
    assert set(caps.fp8_formats) == fp8
    assert gfx in str(caps.extensions["gfx_arch"])


def test_unknown_emulated_arch_is_refused(monkeypatch):
    monkeypatch.setenv("SGLANG_ROCM_EMULATE", "gfx1100")
    r = plugin.sglang_backend_probe()
    assert not r.available and "unknown architecture" in r.reasons[0]
