"""The ascend kernels on an Ascend NPU against the op specs' references, through the conformance
runner (every case of every op the backend registers a kernel for). Runs only where torch_npu
imports and an NPU is present; skips here. An owner of Ascend hardware runs this and
`sglang conformance --backend ascend` (docs/ascend.md)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch_npu", reason="torch-npu is not installed (Ascend hosts only)")

from sglang.backend.discovery import discover  # noqa: E402
from sglang.conformance.runner import FAILED, Target, run_case  # noqa: E402
from sglang.ops import get_spec  # noqa: E402
from sglang_ascend.kernels import KERNEL_MODULES  # noqa: E402


@pytest.fixture(scope="module")
def target():
    found = discover()
    b = found.backends["ascend"]
    if not b.available:
        pytest.skip(f"ascend backend unavailable: {b.why_unavailable()}")
    return Target(b, found.registry, b.create_runtime(device_index=0))


@pytest.mark.parametrize("module", [m.rsplit(".", 1)[1] for m in KERNEL_MODULES], ids=lambda m: m)
def test_kernels_match_the_reference(target, module):
    ops = [
        k.op
        for k in target.registry.kernels(backend="ascend")
        if k.fn.__module__.endswith("." + module)
    ]
    assert ops, f"no ascend kernel from {module}"
    failures = []
    for op in sorted(set(ops)):
        spec = get_spec(op)
        for case in spec.cases():
            r = run_case(target, spec, case)
            if r.status == FAILED:
                failures.append(f"{case.id}: {r.reason}")
    assert not failures, "\n".join(failures)
