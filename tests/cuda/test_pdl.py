"""Programmatic dependent launch (sglang_triton.pdl): the rule every kernel launched with it
must keep, checked in the PTX Triton emits for sm_90 (no GPU needed): griddepcontrol.wait comes
before any global store, atomic or async copy, so nothing is written before the kernel before
it has completed; and before any global load, except in the kernels of EARLY_READS, which read
the step's inputs and weights first (what no kernel of the step writes). Covers the small decode-path kernels (norm, activation, KV
store, rope, attention split and merge, routing, the dense GEMV); the quantized and MoE GEMVs
are checked in test_decode_kernels_compile.py. And where PDL applies: never on CPU tensors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)

SCRIPT = textwrap.dedent(
    """
    import inspect, json
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from sglang_triton import activation, attention, gemv, kv, moe_route, norm, rope

    B, F, I, L = "*bf16", "*fp32", "*i32", "*i64"
    FLOATS = {"eps", "scale", "sm_scale", "logit_softcap"}
    ATTN = dict(GROUP=8, HEAD_BLOCKS=1, BLOCK_H=16, BLOCK_N=64, D=128, DV=128, BLOCK_D=128,
                BLOCK_DV=128, SPLITS=8, MIN_SPLIT=64, USE_WINDOW=False, USE_SOFTCAP=False,
                USE_SINKS=False, DIRECT=False, PRECISION="tf32", UPCAST=False, SKIP_EMPTY=False)
    KERNELS = [
        (norm._rms_norm_kernel, dict(HAS_RESIDUAL=True, BLOCK=4096, ONE_PASS=True), {}),
        (activation._act_mul_kernel, dict(ACT=0, BLOCK=1024), {}),
        (kv._store_kernel, dict(D=128, DV=128, BLOCK_K=1024, BLOCK_V=1024), {"loc": L}),
        (rope._rope_kernel, dict(R2=64, D=128, IS_NEOX=True, BLOCK_R2=64, BLOCK_H=32,
                                 BLOCK_REST=0, NORM=True, STORE=False, BLOCK_V=1024),
         {"pos_ptr": L, "cache_ptr": F, "loc_ptr": L}),
        (rope._rope_kernel, dict(R2=64, D=128, IS_NEOX=True, BLOCK_R2=64, BLOCK_H=32,
                                 BLOCK_REST=0, NORM=False, STORE=True, BLOCK_V=1024),
         {"pos_ptr": L, "cache_ptr": F, "loc_ptr": L}),  # rope.kv_store
        (attention._decode_split_kernel, dict(ATTN, MERGE=False),
         {"Out": F, "LSE": F, "Sinks": F, "kv_indptr": I, "kv_indices": L, "Final": B,
          "COUNT": I}),
        (attention._decode_split_kernel, dict(ATTN, MERGE=True),
         {"Out": F, "LSE": F, "Sinks": F, "kv_indptr": I, "kv_indices": L, "Final": B,
          "COUNT": I}),
        (attention._decode_split_kernel, dict(ATTN, MERGE=True, SKIP_EMPTY=True),
         {"Out": F, "LSE": F, "Sinks": F, "kv_indptr": I, "kv_indices": L, "Final": B,
          "COUNT": I}),
        (attention._decode_merge_kernel, dict(DV=128, BLOCK_DV=128, SPLITS=8),
         {"PART": F, "LSE": F}),
        (moe_route._route_kernel, dict(TOPK=8, RENORMALIZE=True, BLOCK_E=128, BLOCK_K=8),
         {"weights_ptr": F, "ids_ptr": I}),
        (gemv._gemv_kernel, dict(HAS_BIAS=False, BLOCK_N=16, BLOCK_K=1024, EVEN_K=True, SPLIT=1),
         {"PART": F, "COUNT": I, "K": "i32"}),
        (gemv._gemv_kernel, dict(HAS_BIAS=True, BLOCK_N=4, BLOCK_K=512, EVEN_K=True, SPLIT=4),
         {"PART": F, "COUNT": I, "K": "i32"}),
    ]
    POINTERS = {"Q", "K", "V", "Out", "LSE", "Sinks", "Final", "COUNT", "PART", "X", "W", "B",
                "Y", "k_cache", "v_cache", "k", "v"}

    # kernel -> what it reads before the wait (the rest of the PTX check is the same)
    EARLY_READS = {
        "_rope_kernel": ("pos_ptr", "loc_ptr", "cache_ptr", "qw_ptr", "kw_ptr"),
        "_decode_split_kernel": ("kv_indptr", "kv_indices", "Sinks"),
    }

    def kind(name, ptrs):
        if name in ptrs:
            return ptrs[name]
        if name.endswith("_ptr") or name in POINTERS:
            return B
        return "fp32" if name in FLOATS else "i32"

    out = []
    for fn, consts, ptrs in KERNELS:
        consts = dict(consts, PDL=True)
        sig = {n: "constexpr" if n in consts else kind(n, ptrs)
               for n in inspect.signature(fn.fn).parameters}
        k = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts),
                           target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
        ptx = k.asm["ptx"]
        wait = ptx.find("griddepcontrol.wait")
        ops = ("ld.global", "st.global", "atom.", "red.", "cp.async", "prefetch")
        allowed = ("ld.global",) if fn.__name__ in EARLY_READS else ()
        early = [op for op in ops if 0 <= ptx.find(op) < wait and op not in allowed]
        out.append({"kernel": fn.__name__, "wait": wait >= 0, "early": early,
                    "release": "griddepcontrol.launch_dependents" in ptx})
    print(json.dumps(out))
    """
)


def test_pdl_kernels_wait_before_touching_memory():
    triton_dir = os.path.dirname(importlib.util.find_spec("triton").origin)
    if not os.path.exists(os.path.join(triton_dir, "backends", "nvidia", "bin", "ptxas")):
        pytest.skip("triton's NVIDIA backend tools are not installed")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    kernels = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(kernels) == 12
    bad = [k for k in kernels if not k["wait"] or k["early"] or not k["release"]]
    assert not bad, bad


def test_pdl_is_off_for_cpu_tensors():
    import torch
    from sglang_triton import pdl

    assert pdl.PDL_LAUNCH["enabled"]  # on by default; where the device can
    cpu = torch.device("cpu")
    assert pdl.enabled(cpu) is False and pdl.args(cpu) == {"PDL": False}
