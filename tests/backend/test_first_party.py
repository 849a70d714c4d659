"""The first-party accelerator backends on a machine without their hardware: each probe's
branches (with the machine's facts patched in), and cuda's server defaults by memory tier."""

from __future__ import annotations

import pytest
import torch

sglang_cuda = pytest.importorskip("sglang_cuda")
from sglang_ascend import probe as ascend_probe  # noqa: E402
from sglang_cuda import probe as cuda_probe  # noqa: E402
from sglang_cuda.defaults import server_defaults  # noqa: E402
from sglang_rocm import probe as rocm_probe  # noqa: E402
from sglang_tpu import probe as tpu_probe  # noqa: E402

GIB = 1 << 30


@pytest.mark.parametrize(
    "memory_gib, chunk, max_bs",
    [
        (16, 2048, 8),
        (24, 2048, 24),
        (40, 4096, 32),
        (80, 8192, 256),
        (141, 8192, 256),
        (192, 16384, 256),
    ],
)
def test_cuda_server_defaults_follow_the_memory_tiers(memory_gib, chunk, max_bs):
    d = server_defaults(memory_gib * GIB)
    assert d.chunked_prefill_size == chunk
    small = (1, 2, 4, 8, 16, 24, 32)
    assert d.graph_batch_sizes[:7] == tuple(b for b in small if b <= max_bs)
    assert max(d.graph_batch_sizes) == max_bs
    steps = [b for b in d.graph_batch_sizes if b > 32]
    assert all(b % 16 == 0 for b in steps) and steps == sorted(steps)
    assert 0.7 < d.mem_fraction_static < 0.9


def test_cuda_probe_cpu_build(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(cuda_probe, "driver_present", lambda: True)
    r = cuda_probe.probe()
    assert r.reasons == (f"torch {torch.__version__} is a CPU build (torch.version.cuda is None)",)


def test_cuda_probe_rocm_build_points_to_rocm(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", "6.2")
    monkeypatch.setattr(cuda_probe, "driver_present", lambda: True)
    assert "use the rocm backend" in cuda_probe.probe().reasons[0]


def test_cuda_probe_without_driver_never_asks_torch(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(cuda_probe, "driver_present", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: pytest.fail("asked torch"))
    r = cuda_probe.probe()
    assert not r.available and r.reasons[0].startswith("no NVIDIA device")


@pytest.mark.parametrize("count", [0, 2])
def test_cuda_probe_counts_devices(monkeypatch, count):
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(cuda_probe, "driver_present", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    r = cuda_probe.probe()
    assert r.available == (count > 0)
    assert r.details["device_count"] == count
    if count:
        assert "2 NVIDIA device(s)" in r.reasons[0] and "triton" in r.reasons[0]
    else:
        assert "device_count() is 0" in r.reasons[0]


def test_rocm_probe(monkeypatch):
    monkeypatch.setattr(torch.version, "hip", "6.2.41133")
    monkeypatch.setattr(rocm_probe, "driver_present", lambda: True)
    monkeypatch.setattr(rocm_probe, "aiter_version", lambda: None)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    r = rocm_probe.probe()
    assert r.available and "8 AMD GPU(s)" in r.reasons[0]
    assert "amd-aiter not installed" in r.reasons[0]


@pytest.mark.parametrize(
    "version, release", [("2.14.0+cpu", "2.14.0"), ("2.1.0.post6", "2.1.0"), ("2.9", "2.9.0")]
)
def test_ascend_release(version, release):
    assert ascend_probe.release(version) == release


def test_ascend_probe_version_pin(monkeypatch):
    monkeypatch.setattr(ascend_probe, "torch_npu_version", lambda: "2.14.0")
    monkeypatch.setattr(ascend_probe, "pinned_torch", lambda v: "2.14.0")
    monkeypatch.setattr(ascend_probe, "npu_devices", lambda: ["/dev/davinci0"])
    monkeypatch.setattr(torch, "__version__", "2.13.0+cpu")
    r = ascend_probe.probe()
    assert r.reasons == ("torch-npu 2.14.0 pins torch 2.14.0, found torch 2.13.0+cpu",)
    monkeypatch.setattr(torch, "__version__", "2.14.0+cpu")
    assert ascend_probe.probe().available


def test_tpu_probe(monkeypatch):
    monkeypatch.setattr(tpu_probe, "_version", {"torch-xla": "2.9.0"}.get)
    monkeypatch.setattr(tpu_probe, "tpu_devices", lambda: ["/dev/accel0"])
    monkeypatch.setattr(torch, "__version__", "2.13.0+cpu")
    assert tpu_probe.probe().reasons == ("torch-xla 2.9.0 needs torch 2.9, found torch 2.13.0+cpu",)
    monkeypatch.setattr(tpu_probe, "_version", {"torch-xla": "2.9.0", "jax": "0.10.2"}.get)
    r = tpu_probe.probe()
    assert r.available and "via jax 0.10.2" in r.reasons[0]
    monkeypatch.setattr(torch, "__version__", "2.9.1")
    assert "via torch-xla 2.9.0" in tpu_probe.probe().reasons[0]
