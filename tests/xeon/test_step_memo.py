"""The xeon kernels' per-step memo: reuse only for equal contents, never a stale value."""

import pytest
import torch

step_memo = pytest.importorskip("sglang_xeon.kernels.step_memo")


def test_reuses_for_equal_contents_and_rebuilds_after_in_place_refill():
    memo, builds = step_memo.StepMemo(), []

    def build():
        builds.append(1)
        return idx.sum().item()

    with torch.inference_mode():  # inference tensors: no version counter to rely on
        idx = torch.tensor([1, 2, 3])
        assert memo.get((idx,), ("w",), build) == 6
        assert memo.get((idx.clone(),), ("w",), build) == 6  # equal contents: reused
        assert len(builds) == 1
        idx.copy_(torch.tensor([4, 5, 6]))  # a persistent buffer refilled for the next step
        assert memo.get((idx,), ("w",), build) == 15
        assert len(builds) == 2
        assert memo.get((idx,), ("other",), build) == 15  # different extra: rebuilt
        assert len(builds) == 3


def test_constants_compare_by_identity():
    memo, table = step_memo.StepMemo(), torch.zeros(4)
    pos = torch.tensor([0])
    assert memo.get((pos,), (), lambda: "a", constants=(table,)) == "a"
    assert memo.get((pos,), (), lambda: "b", constants=(table,)) == "a"
    assert memo.get((pos,), (), lambda: "c", constants=(table.clone(),)) == "c"


def test_decode_plan_follows_a_refilled_index_buffer():
    """attention.decode through the memo equals the reference when the same index tensors are
    refilled in place between calls (the stale-plan hazard)."""
    from sglang.ops.attention import decode as decode_reference
    from sglang_xeon.kernels.attention import decode

    torch.manual_seed(0)
    k_cache, v_cache = torch.randn(64, 2, 16), torch.randn(64, 2, 16)
    q = torch.randn(2, 4, 16)
    indptr = torch.tensor([0, 5, 12], dtype=torch.int32)
    indices = torch.arange(1, 13, dtype=torch.int32)
    with torch.inference_mode():
        indptr, indices = indptr.clone(), indices.clone()
        for _ in range(3):
            indices.copy_(torch.randperm(60)[:12] + 1)
            got = decode(q, k_cache, v_cache, indptr, indices, 0.25)
            want = decode_reference(q, k_cache, v_cache, indptr, indices, 0.25)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
