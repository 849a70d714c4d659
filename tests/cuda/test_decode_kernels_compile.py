"""The decode GEMV kernels (gemv_fp8 and its tensor-core variants, gemv_int4, gemv.rows' tensor-core
kernel for 1-16 rows, moe_decode, the
latter also with gpt-oss's swigluoai and expert biases; split-K too) compiled for an H100/H200
(sm_90) without a GPU: Triton's compiler and the bundled ptxas, in a subprocess (the tests'
interpreter mode, set when kernels are decorated, cannot compile). Catches what the interpreter accepts and
the compiler refuses (a global that is not a constexpr, a type mismatch in a branch) and
register spills of the default launches, before any GPU run. Also gpt-oss's variants of the
attention kernels (sinks, window) and of the aligned fused MoE (swigluoai, biases): compiled,
spills not checked. And the MLA kernel (sglang_triton.mla) at DeepSeek's geometry: no spills.
Skipped where triton has no NVIDIA backend or ptxas."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)

SCRIPT = textwrap.dedent(
    """
    import subprocess, tempfile, os, json
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from sglang_cuda.kernels import gemv_fp8
    from sglang_triton import gemv, gemv_int4, moe_decode

    TARGET = GPUTarget("cuda", 90, 32)
    CUOBJDUMP = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin/cuobjdump")
    B, I32, F32, C = "*bf16", "i32", "*fp32", "constexpr"

    def with_pdl(names, sig, consts):
        # the PDL variants (sglang_triton.pdl): what runs on Hopper
        sig, consts = dict(sig), dict(consts)
        if "PDL" in names:
            sig["PDL"] = "constexpr"
            consts.setdefault("PDL", True)
        return sig, consts

    def build(fn, sig, consts, warps, stages):
        # as the JIT specialises a typical launch: pointers 16-byte aligned, strides multiples
        # of 16 (without it Triton 3.6 spills kernels that run without spilling)
        names = list(fn.arg_names)
        sig, consts = with_pdl(names, sig, consts)
        attrs = {(names.index(n),): [["tt.divisibility", 16]] for n, t in sig.items()
                 if t.startswith("*") or n.startswith("stride")}
        k = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts, attrs=attrs),
                           target=TARGET, options={"num_warps": warps, "num_stages": stages})
        with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
            f.write(k.asm["cubin"])
        use = subprocess.run([CUOBJDUMP, "--dump-resource-usage", f.name],
                             capture_output=True, text=True).stdout
        line = next(x for x in use.splitlines() if "REG:" in x)
        fields = dict(kv.split(":", 1) for kv in line.split() if ":" in kv)
        return {"kernel": fn.__name__, "regs": int(fields["REG"]), "stack": int(fields["STACK"]),
                "pdl": "PDL" in names, "memory_before_wait": memory_before_wait(k.asm["ptx"])}

    def memory_before_wait(ptx):
        # PDL's rule (sglang_triton.pdl): no global access before griddepcontrol.wait
        wait = ptx.find("griddepcontrol.wait")
        if wait < 0:
            return None
        ops = ("ld.global", "st.global", "atom.", "red.", "cp.async", "prefetch")
        return [op for op in ops if 0 <= ptx.find(op) < wait]

    out = []
    f = gemv_fp8.GEMV_FP8_LAUNCH
    sig = dict(X=B, W="*fp8e4nv", WS=F32, XS=F32, B=B, Y=B, PART=F32, COUNT="*i32", M=I32,
               N=I32, K=I32, steps_per_split=I32, stride_xm=I32, stride_wn=I32, stride_ws=I32,
               stride_ym=I32, SCHEME=C, STATIC=C, HAS_BIAS=C, GROUP_N=C, KG=C, KC=C, BLOCK_N=C,
               EMULATE=C, SPLIT=C, PRE=C)
    for scheme, static, split, pre in ((2, False, 1, True), (2, False, 4, True),
                                       (2, False, 1, False), (1, False, 1, True),
                                       (0, False, 1, False), (0, True, 1, True)):
        kg, kc = (f["block_k"] // 128, 128) if scheme == 2 else (1, f["block_k"])
        consts = dict(SCHEME=scheme, STATIC=static, HAS_BIAS=True, GROUP_N=128, KG=kg, KC=kc,
                      BLOCK_N=f["block_n"], EMULATE=False, SPLIT=split, PRE=pre)
        out.append(build(gemv_fp8._fp8_gemv_kernel, sig, consts, f["num_warps"], f["num_stages"]))
    sig = dict(X=B, XS=F32, XD=F32, M=I32, K=I32, stride_xm=I32, SCHEME=C, STATIC=C, KG=C, KC=C,
               EMULATE=C)
    for scheme, kg, kc in ((2, 8, 128), (1, 1, 1024), (0, 1, 1024)):
        consts = dict(SCHEME=scheme, STATIC=False, KG=kg, KC=kc, EMULATE=False)
        out.append(build(gemv_fp8._fp8_act_kernel, sig, consts, 4, 3))
    sig = dict(X=B, Q="*fp8e4nv", S=F32, K=I32, stride_xm=I32, stride_sm=I32, stride_sg=I32,
               KG=C, KC=C, EMULATE=C)
    out.append(build(gemv_fp8._fp8_group_quant_kernel, sig,
                     dict(KG=8, KC=128, EMULATE=False), 4, 3))
    sig = dict(X=B, W="*fp8e4nv", WS=F32, B=B, Y=B, M=I32, N=I32, K=I32, stride_xm=I32,
               stride_wn=I32, stride_ws=I32, stride_ym=I32, HAS_BIAS=C, GROUP_N=C, KC=C,
               BLOCK_N=C, EMULATE=C)
    for bn in (16, 64):  # the "dot" launches bench_decode_gemv.py times
        consts = dict(HAS_BIAS=True, GROUP_N=128, KC=128, BLOCK_N=bn, EMULATE=False)
        out.append(build(gemv_fp8._fp8_block_dot_kernel, sig, consts, 4, 3))
    sig = dict(XQ="*fp8e4nv", XS=F32, W="*fp8e4nv", WS=F32, B=B, Y=B, PART=F32, COUNT="*i32",
               M=I32, N=I32, K=I32, steps_per_split=I32, stride_xm=I32, stride_xs=I32,
               stride_wn=I32, stride_ws=I32, stride_ym=I32, HAS_BIAS=C, GROUP_N=C, KC=C,
               BLOCK_N=C, SPLIT=C, FUSED=C, EMULATE=C)
    for bn, warps, stages, split, fused in ((64, 4, 4, 1, False), (64, 4, 6, 4, False),
                                            (128, 8, 4, 4, False), (64, 4, 4, 4, True)):  # "mma"
        if fused:
            sig.update(XQ=B, XS=B)
        consts = dict(HAS_BIAS=True, GROUP_N=128, KC=128, BLOCK_N=bn, SPLIT=split,
                      FUSED=2 if fused else 0, EMULATE=False)
        out.append(build(gemv_fp8._fp8_block_mma_kernel, sig, consts, warps, stages))
    r = gemv.ROWS_LAUNCH
    sig = dict(X=B, W=B, B=B, Y=B, PART=F32, COUNT="*i32", M=I32, N=I32, K=I32,
               steps_per_split=I32, stride_xm=I32, stride_wn=I32, stride_ym=I32, HAS_BIAS=C,
               BLOCK_N=C, BLOCK_K=C, EVEN_K=C, ROWS=C, SPLIT=C)
    for rows, split, bn, bk, warps in ((1, 1, r["block_n"], r["block_k"], r["num_warps"]),
                                       (16, 4, r["block_n"], r["block_k"], r["num_warps"]),
                                       (16, 4, 128, 256, 8)):
        consts = dict(HAS_BIAS=False, BLOCK_N=bn, BLOCK_K=bk, EVEN_K=True, ROWS=rows, SPLIT=split)
        out.append(build(gemv._rows_mma_kernel, sig, consts, warps, r["num_stages"]))
    g = gemv_int4.GEMV_INT4_LAUNCH
    sig = dict(X=B, QW="*i32", S=F32, ZS=F32, PERM="*i32", B=B, Y=B, PART=F32, COUNT="*i32",
               M=I32, N=I32, K=I32, steps_per_split=I32, stride_xm=I32, stride_qk=I32,
               stride_s=I32, stride_ym=I32, G=C, HAS_PERM=C, HAS_BIAS=C, BLOCK_N=C, KP=C,
               GATHER=C, SPLIT=C, PAIRS=C)
    # the scales as float16 (scale, zero) pairs (AWQ / GPTQ) or float32 scale and zero x scale
    pair_types = {True: dict(S="*fp16", ZS="*fp16"), False: dict(S=F32, ZS=F32)}
    kp = gemv_int4.words_per_step(128, g["block_k"])
    for perm, split, pairs in ((False, 1, True), (True, 1, False), (False, 4, True)):
        consts = dict(G=128, HAS_PERM=perm, HAS_BIAS=True, BLOCK_N=g["block_n"], KP=kp,
                      GATHER=not gemv_int4.one_group_steps(128, kp), SPLIT=split, PAIRS=pairs)
        out.append(build(gemv_int4._int4_gemv_kernel, dict(sig, **pair_types[pairs]), consts,
                         g["num_warps"], g["num_stages"]))
    g = gemv_int4.GEMV_INT4_MMA_LAUNCH
    sig = dict(X=B, QW="*i32", S=F32, ZS=F32, PERM="*i32", B=B, Y=B, PART=F32, COUNT="*i32",
               M=I32, N=I32, K=I32, steps_per_split=I32, stride_xm=I32, stride_qk=I32,
               stride_s=I32, stride_ym=I32, ROWS=C, G=C, BK=C, HAS_PERM=C, HAS_BIAS=C,
               BLOCK_N=C, SPLIT=C, FP16=C, ASM=C, ONES=C, PAIRS=C)
    for m, grp, bk, perm, split, fp16, asm, ones, pairs in (
            (1, 128, 128, False, 1, False, True, True, True),
            (1, 128, 128, False, 4, False, False, False, False),
            (16, 128, 128, True, 4, False, True, False, True),
            (2, 32, 32, False, 1, True, True, True, True)):
        if fp16:
            sig.update(X="*fp16", B="*fp16", Y="*fp16")
        consts = dict(ROWS=m, G=grp, BK=bk, HAS_PERM=perm, HAS_BIAS=True, BLOCK_N=g["block_n"],
                      SPLIT=split, FP16=fp16, ASM=asm, ONES=ones, PAIRS=pairs)
        out.append(build(gemv_int4._int4_mma_kernel, dict(sig, **pair_types[pairs]), consts,
                         g["num_warps"], g["num_stages"]))
    gu, dn = moe_decode.DECODE_LAUNCH["gate_up"], moe_decode.DECODE_LAUNCH["down"]
    scales = dict(stride_se=I32, stride_sn=I32, stride_sk=I32, FP8=C, BN_Q=C, BK_Q=C, MXFP4=C,
                  INT4=C, GROUP=C, SUB=C)
    U8 = "*u8"
    sig = dict(X=B, W13=B, B13=B, H=F32, IDS="*i32", inter=I32, K=I32, E=I32, stride_xm=I32,
               stride_we=I32, stride_wn=I32, stride_be=I32, stride_hm=I32, S13=F32, Z13=F32,
               up_row=I32,
               TOPK=C, ACT=C, HAS_BIAS=C, BLOCK_N=C, BLOCK_K=C, **scales)
    # silu without biases (Qwen3-MoE), gpt-oss's swigluoai (3) with biases, top-4; FP8 blocks
    # of 128 (DeepSeek-V3, Qwen3 FP8); MXFP4 (gpt-oss) and int4 groups of 128 (GPTQ / AWQ) on
    # the paired-nibble path, and int4 on the gather (groups paired_sub refuses)
    for topk, act, bias, q in ((8, 0, False, ""), (4, 3, True, ""), (8, 0, False, "fp8"),
                               (4, 3, True, "mxfp4"), (8, 0, False, "int4"),
                               (8, 0, False, "int4-gather")):
        gather = q == "int4-gather"
        q = "int4" if gather else q
        g = dict(gu, **moe_decode.GATHER_LAUNCH["gate_up"]) if gather else gu
        g = dict(gu, **moe_decode.PACKED_LAUNCH["gate_up"]) if q in ("mxfp4", "int4") and not gather else g
        consts = dict(TOPK=topk, ACT=act, HAS_BIAS=bias, BLOCK_N=g["block_n"],
                      BLOCK_K=g["block_k"], FP8=q == "fp8", BN_Q=128, BK_Q=128,
                      MXFP4=q == "mxfp4", INT4=q == "int4", GROUP=128 if q == "int4" else 1)
        group = {"int4": 128, "mxfp4": 32}.get(q)
        consts["SUB"] = moe_decode.paired_sub(group, g["block_k"]) if group and not gather else 0
        s = dict(sig, W13="*fp8e4nv") if q == "fp8" else sig
        s = dict(sig, W13=U8, S13=U8) if q == "mxfp4" else s
        s = dict(sig, W13=U8, S13=B, Z13=B) if q == "int4" else s
        out.append(build(moe_decode._gate_up_gemv_kernel, s, consts, gu["num_warps"],
                         gu["num_stages"]))
    sig = dict(H=F32, W2=B, B2=B, Y=B, IDS="*i32", WEIGHTS=F32, PART=F32, COUNT="*i32",
               N=I32, K=I32, E=I32, stride_hm=I32, stride_we=I32, stride_wn=I32, stride_be=I32,
               stride_ym=I32, S2=F32, Z2=F32, TOPK=C, SLOTS=C, HAS_BIAS=C, BLOCK_N=C, BLOCK_K=C,
               **scales)
    for topk, slots, bias, q in ((8, 8, False, ""), (8, 1, False, ""), (4, 1, True, ""),
                                 (8, 1, False, "fp8"), (4, 1, True, "mxfp4"),
                                 (8, 1, False, "int4"), (8, 1, False, "int4-gather")):
        gather = q == "int4-gather"
        q = "int4" if gather else q
        d = dict(dn, **moe_decode.GATHER_LAUNCH["down"]) if gather else dn
        d = dict(dn, **moe_decode.PACKED_LAUNCH["down"]) if q in ("mxfp4", "int4") and not gather else d
        consts = dict(TOPK=topk, SLOTS=slots, HAS_BIAS=bias, BLOCK_N=d["block_n"],
                      BLOCK_K=d["block_k"], FP8=q == "fp8", BN_Q=128, BK_Q=128,
                      MXFP4=q == "mxfp4", INT4=q == "int4", GROUP=128 if q == "int4" else 1)
        group = {"int4": 128, "mxfp4": 32}.get(q)
        consts["SUB"] = moe_decode.paired_sub(group, d["block_k"]) if group and not gather else 0
        s = dict(sig, W2="*fp8e4nv") if q == "fp8" else sig
        s = dict(sig, W2=U8, S2=U8) if q == "mxfp4" else s
        s = dict(sig, W2=U8, S2=B, Z2=B) if q == "int4" else s
        out.append(build(moe_decode._down_gemv_kernel, s, consts,
                         dn["num_warps"], dn["num_stages"]))
    print(json.dumps(out))
    """
)


GPT_OSS_SCRIPT = textwrap.dedent(
    """
    import inspect, json
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from sglang_triton import attention, moe
    from sglang_triton.activation import SWIGLUOAI

    TARGET = GPUTarget("cuda", 90, 32)
    B, F32, I32 = "*bf16", "*fp32", "*i32"

    def build(fn, consts, ptrs, warps, stages):
        if "PDL" in fn.arg_names:  # the PDL variant (sglang_triton.pdl)
            consts = dict(consts, PDL=True)
        params = inspect.signature(fn.fn).parameters
        # constexprs left out take their defaults (FP8 = MXFP4 = False: a float variant)
        consts = {**{n: p.default for n, p in params.items() if "constexpr" in str(p.annotation)
                     and p.default is not inspect.Parameter.empty}, **consts}
        sig = {}
        for name in params:
            if name in consts:
                sig[name] = "constexpr"
            else:
                sig[name] = ptrs.get(name, "fp32" if name in ("sm_scale", "logit_softcap") else "i32")
        triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts), target=TARGET,
                       options={"num_warps": warps, "num_stages": stages})
        return fn.__name__

    out = []
    common = dict(D=64, DV=64, BLOCK_D=64, BLOCK_DV=64, USE_SOFTCAP=False, USE_SINKS=True,
                  PRECISION="tf32", UPCAST=False)
    kv = dict(Q=B, K=B, V=B, Sinks=F32, kv_indptr=I32, kv_indices="*i64")
    for window in (False, True):
        consts = dict(common, GROUP=8, BLOCK_M=64, BLOCK_N=64, USE_WINDOW=window)
        ptrs = dict(kv, Out=B, qo_indptr=I32, block_seq=I32, block_indptr="*i64")
        out.append(build(attention._extend_kernel, consts, ptrs, 4, 2))
        for direct in (False, True):
            consts = dict(common, GROUP=8, HEAD_BLOCKS=1, BLOCK_H=16, BLOCK_N=64, SPLITS=8,
                          MIN_SPLIT=64, USE_WINDOW=window, DIRECT=direct, MERGE=not direct,
                          SKIP_EMPTY=window and not direct)
            ptrs = dict(kv, Out=B if direct else F32, LSE=F32, Final=B, COUNT=I32)
            out.append(build(attention._decode_split_kernel, consts, ptrs, 4, 3))
    tiles = dict(BLOCK_M=64, BLOCK_N=64, BLOCK_K=32)
    ptrs = dict(x_ptr=B, w_ptr=B, b_ptr=B, h_ptr=B, pairs_ptr=I32, experts_ptr=I32, S=F32)
    consts = dict(TOPK=4, ACT=SWIGLUOAI, HAS_BIAS=True, IEEE=False, **tiles)
    out.append(build(moe._gate_up_kernel, consts, ptrs, 4, 3))
    down_ptrs = dict(ptrs, y_ptr=F32, weights_ptr=F32)
    out.append(build(moe._down_kernel, dict(HAS_BIAS=True, IEEE=False, **tiles), down_ptrs, 4, 3))
    # FP8 blocks of 128 (DeepSeek-V3, Qwen3 FP8), silu without biases
    fp8 = dict(FP8=True, BN_Q=128, BK_Q=128, IEEE=False, HAS_BIAS=False, **tiles)
    out.append(build(moe._gate_up_kernel, dict(fp8, TOPK=8, ACT=0),
                     dict(ptrs, w_ptr="*fp8e4nv"), 4, 3))
    out.append(build(moe._down_kernel, fp8, dict(down_ptrs, w_ptr="*fp8e4nv"), 4, 3))
    # MXFP4 (gpt-oss: swigluoai with biases)
    mx = dict(MXFP4=True, IEEE=False, HAS_BIAS=True, **tiles)
    u8 = dict(w_ptr="*u8", S="*u8")
    out.append(build(moe._gate_up_kernel, dict(mx, TOPK=4, ACT=SWIGLUOAI), dict(ptrs, **u8), 4, 3))
    out.append(build(moe._down_kernel, mx, dict(down_ptrs, **u8), 4, 3))
    # int4 groups of 128 (GPTQ / AWQ experts), silu without biases
    i4 = dict(INT4=True, GROUP=128, IEEE=False, HAS_BIAS=False, **tiles)
    codes = dict(w_ptr="*u8", S=B, Z=B)
    out.append(build(moe._gate_up_kernel, dict(i4, TOPK=8, ACT=0), dict(ptrs, **codes), 4, 3))
    out.append(build(moe._down_kernel, i4, dict(down_ptrs, **codes), 4, 3))
    print(json.dumps(out))
    """
)


MLA_SCRIPT = textwrap.dedent(
    """
    import inspect, json, os, subprocess, tempfile
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from sglang_triton import mla

    TARGET = GPUTarget("cuda", 90, 32)
    CUOBJDUMP = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin/cuobjdump")
    B, F32, I32 = "*bf16", "*fp32", "*i32"
    ptrs = dict(Q=B, KV=B, LSE=F32, qo_indptr=I32, kv_indptr=I32, kv_indices="*i64",
                block_seq=I32, block_indptr="*i64")
    fn = mla._mla_kernel
    out = []
    for decode, cfg in ((True, mla.MLA_DECODE_LAUNCH), (False, mla.MLA_EXTEND_LAUNCH)):
        block_t = 1 if decode else cfg["rows"] // cfg["block_h"]
        for direct in (False, True):
            consts = dict(HEADS=16, R=512, P=64, BLOCK_R=512, BLOCK_P=64, BLOCK_T=block_t,
                          BLOCK_H=cfg["block_h"], BLOCK_N=cfg["block_n"],
                          SPLITS=1 if direct else 8, MIN_SPLIT=cfg["min_split"],
                          DECODE=decode, DIRECT=direct, PRECISION="tf32", UPCAST=False)
            p = dict(ptrs, Out=B if direct else F32)
            sig = {n: "constexpr" if n in consts else p.get(n, "fp32" if n == "sm_scale" else "i32")
                   for n in inspect.signature(fn.fn).parameters}
            k = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts), target=TARGET,
                               options={"num_warps": cfg["num_warps"],
                                        "num_stages": cfg["num_stages"]})
            with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
                f.write(k.asm["cubin"])
            use = subprocess.run([CUOBJDUMP, "--dump-resource-usage", f.name],
                                 capture_output=True, text=True).stdout
            line = next(x for x in use.splitlines() if "REG:" in x)
            fields = dict(kv.split(":", 1) for kv in line.split() if ":" in kv)
            out.append({"kernel": "mla_decode" if decode else "mla_extend", "direct": direct,
                        "regs": int(fields["REG"]), "stack": int(fields["STACK"])})
    print(json.dumps(out))
    """
)


def _compile(script: str) -> list:
    """Run a compile script in a subprocess without the interpreter; its last line's JSON."""
    triton_dir = os.path.dirname(importlib.util.find_spec("triton").origin)
    tools = os.path.join(triton_dir, "backends", "nvidia", "bin")
    if not all(os.path.exists(os.path.join(tools, t)) for t in ("ptxas", "cuobjdump")):
        pytest.skip("triton's NVIDIA backend tools (ptxas, cuobjdump) are not installed")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    import json

    return json.loads(r.stdout.strip().splitlines()[-1])


def test_gpt_oss_kernel_variants_compile_for_sm90():
    # and the fused MoE's FP8, MXFP4 and int4 variants
    assert len(_compile(GPT_OSS_SCRIPT)) == 14


def test_decode_kernels_compile_for_sm90_without_spills():
    kernels = _compile(SCRIPT)
    assert len(kernels) == 39
    spills = [k for k in kernels if k["stack"] > 0]
    assert not spills, f"default launches spill registers on sm_90: {spills}"
    # every kernel but the block "dot" GEMV (not on a default path) launches with PDL: it
    # waits, and touches no global memory before it does
    pdl = [k for k in kernels if k["kernel"] != "_fp8_block_dot_kernel"]
    assert all(k["pdl"] and k["memory_before_wait"] == [] for k in pdl), pdl


def test_mla_kernels_compile_for_sm90_without_spills():
    """DeepSeek's geometry (R 512, P 64, 16 heads) at the default MLA launches."""
    kernels = _compile(MLA_SCRIPT)
    assert len(kernels) == 4
    spills = [k for k in kernels if k["stack"] > 0]
    assert not spills, f"default MLA launches spill registers on sm_90: {spills}"


ROPE_SCRIPT = textwrap.dedent(
    """
    import inspect, json
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from sglang_triton import rope

    fn, out = rope._rope_kernel, []
    ptrs = {"pos_ptr": "*i64", "cache_ptr": "*fp32", "eps": "fp32", "loc_ptr": "*i64"}
    # Qwen3's head (D 128, all rotated) and a partial rotary one (the copied rest normed too);
    # STORE: rope.kv_store (keys into their cache slots, values copied beside them)
    for norm, d, r2, rest, store in ((True, 128, 64, 0, False), (True, 64, 24, 16, False),
                                     (False, 64, 24, 16, False), (True, 128, 64, 0, True),
                                     (False, 128, 64, 0, True)):
        consts = dict(R2=r2, D=d, IS_NEOX=True, BLOCK_R2=triton.next_power_of_2(r2),
                      BLOCK_H=32, BLOCK_REST=rest, NORM=norm, STORE=store, BLOCK_V=1024, PDL=norm)
        sig = {n: "constexpr" if n in consts else ptrs.get(n, "*bf16" if n.endswith("_ptr")
               else "i32") for n in inspect.signature(fn.fn).parameters}
        triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts),
                       target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
        out.append(norm)
    print(json.dumps(out))
    """
)


def test_rope_and_rope_qk_norm_compile_for_sm90():
    """The rope kernel with rope.qk_norm's NORM variant and rope.kv_store's STORE variant (the
    interpreter takes what the compiler may refuse: names bound under a constexpr branch)."""
    assert _compile(ROPE_SCRIPT) == [True, True, False, True, False]
