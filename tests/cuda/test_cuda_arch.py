"""The cuda backend's capabilities by GPU architecture, and how it reads the architecture
(NVML by ctypes, CUDA_VISIBLE_DEVICES honoured) without a GPU here."""

from __future__ import annotations

import pytest

pytest.importorskip("sglang_cuda")
from sglang_cuda import arch  # noqa: E402
from sglang_cuda.plugin import capabilities_for  # noqa: E402


def test_hopper_has_everything():
    f = capabilities_for((9, 0)).features()
    assert {
        "dtype:bfloat16",
        "fp8:e4m3fn",
        "fp4:nvfp4",
        "fp4:mxfp4",
        "int8:w8a8",
        "int4:gptq_act_order",
        "int4:float_zeros",
    } <= f


def test_ampere_lacks_fp8_but_keeps_w4a16_fp4():
    f = capabilities_for((8, 0)).features()
    assert "fp8:e4m3fn" not in f and "dtype:bfloat16" in f and "fp4:nvfp4" in f
    assert "fp8:e4m3fn" in capabilities_for((8, 9)).features()


def test_turing_lacks_bf16_and_int8():
    f = capabilities_for((7, 5)).features()
    assert "dtype:bfloat16" not in f and "int8:w8a8" not in f and "dtype:float16" in f


def test_unknown_architecture_is_taken_as_hopper_and_says_so():
    caps = capabilities_for(None)
    assert "fp8:e4m3fn" in caps.features()
    assert caps.extensions["compute_capability"] == "unknown"


@pytest.mark.parametrize(
    "env, want",
    [
        (None, [0, 1, 2, 3]),
        ("2,0", [2, 0]),
        ("1,7,2", [1]),
        ("GPU-1234abcd", [0, 1, 2, 3]),
        ("", []),
    ],
)
def test_visible_devices(monkeypatch, env, want):
    if env is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", env)
    assert arch._visible(4) == want


def test_lowest_capability_wins(monkeypatch):
    monkeypatch.setattr(arch, "_nvml_capabilities", lambda: [(9, 0), (8, 0)])
    assert arch.compute_capability() == (8, 0)
