"""gemm.int4's few-row GEMV (sglang_triton.gemv_int4, over gemm_int4.prepare's layout) against
the spec's reference through the conformance runner, with the spec's own inputs and tolerances
at decode shapes its case list does not have (M = 2..4, N not a multiple of the block), for
AWQ, GPTQ, act-order and float zero points, under several launch configurations (in Triton's
interpreter where there is no GPU); and the dispatch from gemm.int4 for few rows."""

from __future__ import annotations

import kernel_checks as kc
import pytest
import torch
from sglang.ops.gemm_int4 import VARIANTS, group_size_for
from sglang.ops.spec import Case, case_name
from sglang_triton import gemm_int4, gemv_int4


def _case(dt, m, k, n, variant, bias):
    g = group_size_for(k)
    name = case_name(dt, f"M{m}", f"K{k}", f"N{n}", variant, f"G{g}", "bias" if bias else "")
    params = {"m": m, "k": k, "n": n, "bias": bias, "variant": variant, "group_size": g}
    requires = (VARIANTS[variant][2],)
    return pytest.param(Case("gemm.int4", name, dt, params, requires), id=name)


CASES = [
    _case(dt, m, k, n, variant, bias)
    for dt, m, k, n, bias, variants in (
        (torch.bfloat16, 1, 1152, 136, True, ("awq", "gptq", "gptq-actorder", "awq-floatzeros")),
        (torch.bfloat16, 4, 224, 264, False, ("awq", "gptq-gidx", "gptq-actorder")),
        (torch.float16, 3, 1024, 72, True, ("gptq", "gptq-actorder-floatzeros")),
        (torch.float32, 2, 224, 40, False, ("awq", "gptq-actorder")),
        # 5-16 rows: the tensor-core kernel only (16-bit x)
        (torch.bfloat16, 16, 1024, 136, True, ("awq", "gptq-actorder")),
        (torch.float16, 7, 224, 72, False, ("gptq", "awq-floatzeros")),
    )
    for variant in variants
]


def _gemv(launch=None):
    def run(x, qweight, packing, group_size, scales=None, qzeros=None, g_idx=None, bias=None):
        assert isinstance(qweight, gemm_int4.Int4Weight) and gemv_int4.applies(x, qweight, launch)
        return gemv_int4.gemv_int4(x, qweight, bias, launch=launch)

    return run


@pytest.mark.parametrize("case", CASES)
def test_gemv_int4(case):
    kc.check("gemm.int4", _gemv(), case, prepare=gemm_int4.prepare)


LAUNCHES = (  # the CUDA-core GEMV: steps inside one group, over several (gathered scales)
    {"mma": False, "block_n": 8, "block_k": 32, "num_warps": 1},
    {"mma": False, "block_n": 32, "block_k": 64, "num_warps": 4},
    {"mma": False, "block_n": 64, "block_k": 256, "num_warps": 8},
    {"mma": False, "block_n": 16, "block_k": 32, "num_warps": 2, "split_k": 3},  # split-K
    {"mma": False, "block_n": 32, "block_k": 64, "num_warps": 4, "split_k": "auto"},
    # the tensor-core kernel (16-bit x; the float32 case takes the GEMV above)
    {"block_n": 16, "num_warps": 1},
    {"block_n": 64, "num_warps": 4, "split_k": 3},
    {"block_n": 128, "num_warps": 8, "split_k": "auto"},
    {"block_n": 64, "num_warps": 4, "asm": True},  # the nibbles by inline PTX (on a GPU)
    {"block_n": 64, "num_warps": 4, "ones": False, "split_k": 2},  # sum(x) by a reduction
)


def _launch_id(c):
    name = f"n{c['block_n']}" + (f"-k{c['block_k']}" if "block_k" in c else "-mma")
    name += "-asm" if c.get("asm") else ""
    name += "-sum" if c.get("ones") is False else ""
    return name + (f"-split{c['split_k']}" if "split_k" in c else "")


@pytest.mark.parametrize("launch", LAUNCHES, ids=_launch_id)
@pytest.mark.parametrize("case", [CASES[2], CASES[8], CASES[10]])
def test_gemv_int4_launches(case, launch):
    kc.check("gemm.int4", _gemv(launch), case, prepare=gemm_int4.prepare)


def test_step_sizes():
    assert gemv_int4.words_per_step(128, 512) == 64 and gemv_int4.words_per_step(32, 8) == 1
    assert gemv_int4.words_per_step(12, 128) == 0  # a word would straddle two groups
    assert gemv_int4.one_group_steps(128, 16) and gemv_int4.one_group_steps(128, 4)
    assert not gemv_int4.one_group_steps(128, 64) and not gemv_int4.one_group_steps(96, 8)
    # the tensor-core kernel: one group a step (up to 128 rows of it), K a whole number of steps
    assert gemv_int4.mma_step(128, 4096) == 128 and gemv_int4.mma_step(32, 224) == 32
    assert gemv_int4.mma_step(256, 512) == 128 and gemv_int4.mma_step(96, 192) == 32
    assert gemv_int4.mma_step(12, 120) == 0 and gemv_int4.mma_step(128, 4100) == 0


def test_the_tensor_core_kernel_takes_16_bit_activations():
    w = gemm_int4.Int4Weight(None, None, None, None, 4096, 64, 128)
    bf16, f32 = torch.zeros(1, 4096, dtype=torch.bfloat16), torch.zeros(1, 4096)
    assert gemv_int4._mma_launch(bf16, w, None) == gemv_int4.GEMV_INT4_MMA_LAUNCH
    assert gemv_int4._mma_launch(bf16.half(), w, {"split_k": 2})["split_k"] == 2
    assert gemv_int4._mma_launch(f32, w, None) is None  # float32: the CUDA-core GEMV
    assert gemv_int4._mma_launch(bf16, w, {"mma": False}) is None
    assert gemv_int4._mma_launch(bf16, w, {"block_n": 8}) is None  # below the MMA's tile
    # up to 16 rows on the tensor cores, up to 4 on the CUDA-core GEMV
    q = torch.zeros(1, 64, dtype=torch.int32)
    w = gemm_int4.Int4Weight(q, None, None, None, 4096, 64, 128)
    assert gemv_int4.applies(torch.zeros(16, 4096, dtype=torch.bfloat16), w)
    assert not gemv_int4.applies(torch.zeros(17, 4096, dtype=torch.bfloat16), w)
    assert gemv_int4.applies(torch.zeros(4, 4096), w)
    assert not gemv_int4.applies(torch.zeros(5, 4096), w)


def test_int4_dispatches_few_rows_to_the_gemv(monkeypatch):
    """With USE_GEMV on (the default since its split-K launch beat the tiled kernel)."""
    monkeypatch.setattr(gemm_int4, "USE_GEMV", True)
    calls = []
    real = gemv_int4.gemv_int4
    monkeypatch.setattr(gemv_int4, "gemv_int4", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    case = CASES[0].values[0]
    from sglang.ops import get_spec

    args = get_spec("gemm.int4").make_inputs(case, torch.Generator().manual_seed(case.seed))
    args = {k: v.to(kc.DEVICE) if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    prepared = {**args, **gemm_int4.prepare(args)}
    y = gemm_int4.int4(**prepared)
    assert calls == [1]
    monkeypatch.setattr(gemm_int4, "USE_GEMV", False)
    y_tiled = gemm_int4.int4(**prepared)
    assert calls == [1]
    torch.testing.assert_close(y.float(), y_tiled.float(), rtol=2e-2, atol=2e-2)
