"""The cuda backend's kernels written in plain torch (kv.store, sampling.sample):
every spec case through the conformance runner, on the CPU where there is no GPU. They are
device-neutral torch, so the CPU run checks their semantics; the GPU run (conformance on the
H100) checks the rest. (moe.route, a Triton kernel now: test_moe_route_triton.py.)"""

from __future__ import annotations

import kernel_checks as kc
import pytest
from sglang_triton import kv, sampling


@pytest.mark.parametrize("case", kc.params("kv.store"))
def test_kv_store(case):
    kc.check("kv.store", kv.store, case)


@pytest.mark.parametrize(
    "case",
    kc.params("sampling.sample", lambda c: c.params["vocab"] <= 32001 and c.params["batch"] <= 16),
)
def test_sample(case):
    kc.check("sampling.sample", sampling.sample, case)
