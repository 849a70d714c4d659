"""The xeon native kernels (csrc/) against the torch kernels they replace, on the layouts the
model passes (q / k / v as strided views of one qkv row) and the cases conformance does not
stress; and the fallback when they cannot be built."""

import logging
import os
import subprocess
import sys

import pytest
import torch

native = pytest.importorskip("sglang_xeon.native")
from sglang_xeon.kernels import activation, attention, kv, norm, rope  # noqa: E402

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
TOL = {torch.float32: 2e-5, torch.bfloat16: 2e-2, torch.float16: 2e-3}


@pytest.fixture(scope="module")
def ops():
    why = native.why_unavailable()
    if why is not None:
        pytest.skip(f"native kernels unavailable: {why}")
    return native.ops


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    """At least two torch threads here, so the kernels' split of rows between them
    (bindings.cpp's for_rows) runs even where pytest-xdist's workers run on one
    (tests/conftest.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(2, before))
    yield
    torch.set_num_threads(before)


def close(a, b, dtype):
    torch.testing.assert_close(a.float(), b.float(), atol=TOL[dtype], rtol=TOL[dtype])


def qkv_views(tokens, heads, kv_heads, dim, dtype, gen):
    """q [T, H, D], k / v [T, Hkv, D]: views into one [T, (H + 2 Hkv) D] GEMM output."""
    qkv = torch.randn(tokens, (heads + 2 * kv_heads) * dim, generator=gen).to(dtype)
    q, k, v = qkv.split([heads * dim, kv_heads * dim, kv_heads * dim], dim=-1)
    shape = (tokens, -1, dim)
    return q.reshape(shape), k.reshape(shape), v.reshape(shape)


@pytest.mark.parametrize("dtype", DTYPES)
def test_norm_and_activations_match_torch(ops, dtype):
    gen = torch.Generator().manual_seed(0)
    for tokens, dim in ((1, 576), (16, 576), (5, 100)):
        wide = torch.randn(tokens, dim + 8, generator=gen).to(dtype)
        x = wide[:, :dim]  # strided rows
        r = torch.randn(tokens, dim, generator=gen).to(dtype)
        w = torch.randn(dim, generator=gen).to(dtype)
        close(norm.native_rms_norm(x, w, 1e-5), norm.rms_norm(x, w, 1e-5), dtype)
        got, want = norm.native_rms_norm(x, w, 1e-5, r), norm.rms_norm(x, w, 1e-5, r)
        close(got[0], want[0], dtype)
        close(got[1], want[1], dtype)
        g = torch.randn(tokens, 2 * dim, generator=gen).to(dtype) * 4
        close(activation.native_silu_mul(g), activation.silu_mul(g), dtype)
        for approximate in ("tanh", "none"):
            close(
                activation.native_gelu_mul(g, approximate),
                activation.gelu_mul(g, approximate),
                dtype,
            )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("is_neox", (True, False))
@pytest.mark.parametrize("rotary", (64, 32))
def test_rope_on_qkv_views(ops, dtype, is_neox, rotary):
    gen = torch.Generator().manual_seed(1)
    q, k, _ = qkv_views(7, 9, 3, 64, dtype, gen)
    cache = torch.randn(300, rotary, generator=gen)
    positions = torch.tensor([0, 5, 299, 17, 17, 3, 100])
    got = rope.native_rope(positions, q, k, cache, is_neox)
    want = rope.rope(positions, q, k, cache, is_neox)
    for g, w in zip(got, want):
        assert g.is_contiguous() and g.shape == w.shape
        close(g, w, dtype)
    with pytest.raises(RuntimeError, match="outside the cos/sin cache"):
        rope.native_rope(torch.tensor([300] * 7), q, k, cache, is_neox)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index_dtype", (torch.int32, torch.int64))
@pytest.mark.parametrize(
    "window, softcap, dim", ((-1, 0.0, 64), (40, 0.0, 64), (-1, 20.0, 64), (-1, 0.0, 80))
)
def test_decode_matches_torch(ops, dtype, index_dtype, window, softcap, dim):
    gen = torch.Generator().manual_seed(2)
    lengths = [1, 70, 33, 250]  # blocks of 32 keys: partial, several, one past
    slots = 1000
    kc = torch.randn(slots, 2, dim, generator=gen).to(dtype)
    vc = torch.randn(slots, 2, dim, generator=gen).to(dtype)
    q, _, _ = qkv_views(len(lengths), 8, 2, dim, dtype, gen)
    q = q * 3
    indptr = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    indices = torch.randperm(slots - 1, generator=gen)[: sum(lengths)].add(1).to(index_dtype)
    args = (q, kc, vc, indptr, indices, 0.1, window, softcap)
    close(attention.native_decode(*args), attention.decode(*args), dtype)


@pytest.mark.parametrize(
    "heads, kv_heads, dim", ((9, 3, 64), (12, 2, 64), (6, 2, 128), (2, 2, 128))
)
@pytest.mark.parametrize("indptr_dtype", (torch.int32, torch.int64))
def test_decode_register_kernel_shapes(ops, heads, kv_heads, dim, indptr_dtype):
    # Head sizes 64 / 128 with groups of up to 6 / 3 take the register kernel (kv_head_avx512).
    gen = torch.Generator().manual_seed(3)
    lengths = [130, 1, 32, 17]
    slots = 400
    kc = torch.randn(slots, kv_heads, dim, generator=gen).to(torch.bfloat16)
    vc = torch.randn(slots, kv_heads, dim, generator=gen).to(torch.bfloat16)
    q, _, _ = qkv_views(len(lengths), heads, kv_heads, dim, torch.bfloat16, gen)
    indptr = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=indptr_dtype)
    indices = torch.randperm(slots - 1, generator=gen)[: sum(lengths)].add(1)
    for window, softcap in ((-1, 0.0), (20, 0.0), (-1, 15.0)):
        args = (q * 3, kc, vc, indptr, indices, dim**-0.5, window, softcap)
        close(attention.native_decode(*args), attention.decode(*args), torch.bfloat16)


def test_kv_store_from_views_and_bounds(ops):
    gen = torch.Generator().manual_seed(3)
    _, k, v = qkv_views(4, 6, 2, 64, torch.bfloat16, gen)
    caches = [torch.zeros(50, 2, 64, dtype=torch.bfloat16) for _ in range(4)]
    loc = torch.tensor([7, 3, 49, 0])
    kv.native_store(caches[0], caches[1], loc, k, v)
    kv.store(caches[2], caches[3], loc, k, v)
    assert torch.equal(caches[0], caches[2]) and torch.equal(caches[1], caches[3])
    with pytest.raises(RuntimeError, match="outside the cache"):
        kv.native_store(caches[0], caches[1], torch.tensor([0, 1, 2, 50]), k, v)


def test_avx2_build_passes_conformance_on_an_avx512_cpu(tmp_path):
    """The AVX2 twins (w4a8, w8a16, silu_mul, decode attention's AVX2 kernels) are what an
    AVX2-only CPU runs; on an AVX-512 CPU they are built and checked under SGLANG_XEON_MAX_ISA=avx2
    (a build of their own, about a minute on 2 cores) by the conformance suite, mutants
    included, and by this file's comparisons with the torch kernels. gemm.int4's native kernel
    needs AVX-512 BF16, so under the cap it must step aside."""
    from sglang_xeon import cpu

    if not cpu.has_avx512():
        pytest.skip("no AVX-512 here: the plain run of the suite already checks the AVX2 kernels")
    env = dict(os.environ, SGLANG_XEON_MAX_ISA="avx2", ATEN_CPU_CAPABILITY="avx2")
    env["OMP_NUM_THREADS"] = str(torch.get_num_threads())  # two_threads' count in the subprocesses
    report = tmp_path / "avx2.json"
    ops_ = "gemm.w4a8,gemm.w8a16,act.silu_mul,attention.decode,gemm.int4"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sglang.cli.main",
            "conformance",
            "--backend",
            "xeon",
            "--ops",
            ops_,
            "--kernel",
            "xeon.native_*",
            "--report",
            str(report),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for line in ("xeon.native_w4a8", "xeon.native_w8a16", "xeon.native_attention_decode"):
        row = next(r for r in run.stdout.splitlines() if line in r).split()
        assert int(row[-4]) > 0 and int(row[-3]) == 0, row  # passed, failed
    int4 = next(r for r in run.stdout.splitlines() if "xeon.native_int4" in r).split()
    assert int(int4[-4]) == 0 and int(int4[-1]) > 0, int4  # unavailable: every case skipped
    # This file's comparisons with the torch kernels under the cap (the same build): among
    # them head size 80, which takes the 8-lane loop rather than the fixed-shape kernel.
    tests = "decode_matches_torch or decode_register_kernel_shapes or norm_and_activations"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", tests],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0 and " passed" in run.stdout, run.stdout[-3000:]
    assert "skipped" not in run.stdout.splitlines()[-1], run.stdout[-500:]


def test_build_failure_falls_back_with_a_logged_reason(monkeypatch, caplog):
    monkeypatch.setattr(native, "ops", None)
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.setattr(native, "_missing_tool", lambda: "no C++ compiler (test)")
    with caplog.at_level(logging.WARNING, logger="sglang_xeon.native"):
        assert native.why_unavailable() == "no C++ compiler (test)"
    assert "using the torch kernels" in caplog.text
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.setenv(native.ENV, "0")
    assert "turned off" in native.why_unavailable()


def test_a_killed_builds_lock_does_not_hang_the_next_start(ops, tmp_path):
    """torch's build lock left by a killed build (Ctrl-C, SIGKILL mid-compile) made every later
    load wait for it forever, with no message; the next start now clears it and loads."""
    import os
    import subprocess
    import sys

    from torch.utils import cpp_extension

    build_dir = cpp_extension._get_build_directory(native.build_name(), verbose=False)
    stale = os.path.join(build_dir, "lock")
    open(stale, "w").close()
    code = "from sglang_xeon import native; print('loaded' if native.why_unavailable() is None else native.why_unavailable())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=90, env=os.environ
    )
    assert done.stdout.strip().endswith("loaded"), done.stdout + done.stderr
    assert "stale build lock" in done.stderr
    assert not os.path.exists(stale)


def test_a_start_outside_the_activated_venv_reuses_the_build(ops):
    """`venv/bin/sglang serve` without the venv on PATH used the system's ninja where the build
    had run the venv's: the two keep build logs that do not agree, so every switch between
    the two ways of starting rebuilt the kernels (~30 s on 2 cores). The build now always runs
    this interpreter's ninja: the library is loaded as it is."""
    import os
    import subprocess
    import sys

    from torch.utils import cpp_extension

    name = native.build_name()
    library = os.path.join(cpp_extension._get_build_directory(name, verbose=False), f"{name}.so")
    scripts = os.path.dirname(sys.executable)
    outside = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != scripts
    )
    code = "from sglang_xeon import native; print(native.why_unavailable() or 'loaded')"

    def start(path: str) -> None:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "PATH": path},
        )
        assert done.stdout.strip().endswith("loaded"), done.stdout + done.stderr

    start(os.pathsep.join([scripts, outside]))  # as from the activated venv
    built_at = os.stat(library).st_mtime_ns
    start(outside or "/usr/bin:/bin")  # as `venv/bin/sglang`, the venv not on PATH
    assert os.stat(library).st_mtime_ns == built_at, "the kernels were rebuilt"


def test_interpreter_tools_first_restores_path(monkeypatch, tmp_path):
    import os

    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    ninja = fake_bin / "ninja"
    ninja.write_text("#!/bin/sh\n")
    ninja.chmod(0o755)
    monkeypatch.setattr(native.sys, "executable", str(fake_bin / "python"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with native._interpreter_tools_first():
        assert os.environ["PATH"].split(os.pathsep)[0] == str(fake_bin)
    assert os.environ["PATH"] == "/usr/bin:/bin"
    ninja.unlink()  # no ninja beside the interpreter: PATH is left as it is
    with native._interpreter_tools_first():
        assert os.environ["PATH"] == "/usr/bin:/bin"


def test_registered_above_the_torch_kernels():
    from sglang.backend.registry import KernelRegistry

    registry = KernelRegistry()
    from sglang.backend.plugin_kit import register_kernel_modules
    from sglang_xeon import kernels

    register_kernel_modules(registry.registrar("xeon"), kernels.KERNEL_MODULES)
    for op in ("norm.rms", "rope", "kv.store", "attention.decode", "act.silu_mul"):
        found = sorted(registry.kernels(op, "xeon"), key=lambda k: -k.priority)
        assert found[0].name.startswith("xeon.native_"), op
        assert found[0].available is native.why_unavailable
        assert not found[-1].name.startswith("xeon.native_")  # the fallback stays registered


# rows 1: the one-row GEMV (4 column blocks side by side, then single blocks: n=72 is 4 + a
# partial one); 20: past NATIVE_MAX_M, the natively dequantized weight. Group 36: 18 pairs of k,
# a tail of pairs short of the 4 accumulators.
@pytest.mark.parametrize("rows", (1, 5, 16, 20))
@pytest.mark.parametrize("group_size, n, k", ((32, 72, 256), (128, 64, 256), (36, 40, 288)))
@pytest.mark.parametrize("float_zeros", (False, True))
def test_int4_matches_the_int4_pack_kernel(ops, rows, group_size, n, k, float_zeros):
    from sglang.layers.linear import int4_weight_args
    from sglang_xeon.kernels import gemm_int4

    if not ops.int4_gemm_supported():
        pytest.skip("built without AVX-512 BF16")
    gen = torch.Generator().manual_seed(4)
    weight = (torch.randn(n, k, generator=gen) * 0.05).to(torch.bfloat16)
    args = int4_weight_args(weight, group_size, float_zeros=float_zeros)
    plain = gemm_int4.prepare(args)["qweight"]
    fast = gemm_int4.prepare_native(args)["qweight"]
    assert plain.native is None and fast.native is not None
    x = torch.randn(rows, k, generator=gen).to(torch.bfloat16)
    call = dict(packing="awq", group_size=group_size)
    want = torch.nn.functional.linear(
        x.float(), plain.dense.to_dense().float() if plain.dense.is_mkldnn else plain.dense.float()
    )
    got = gemm_int4.int4(x, fast, **call)
    assert got.shape == (rows, n) and got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(got, gemm_int4.int4(x, plain, **call), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("rows", (1, 20))
def test_int4_act_order_native_form(ops, rows):
    """GPTQ act-order (g_idx: each group's 32 input features anywhere) in the native form: the
    features put in group order, x gathered likewise at each call; the GEMV (1 row) and the
    dequantized weight (20 rows) against the spec's reference, and no dense copy kept."""
    from sglang.ops.gemm_int4 import int4 as reference
    from sglang.ops.quant import int4 as q4
    from sglang_xeon.kernels import gemm_int4

    if not ops.int4_gemm_supported():
        pytest.skip("built without AVX-512 BF16")
    gen = torch.Generator().manual_seed(6)
    n, k, g = 72, 256, 32
    g_idx = torch.empty(k, dtype=torch.long)
    g_idx[torch.randperm(k, generator=gen)] = torch.arange(k) // g
    quant = q4.quantize_int4(torch.randn(n, k, generator=gen), g, g_idx, torch.bfloat16, 1)
    qweight, qzeros = q4.pack_gptq(quant.q, quant.zeros)
    args = dict(qweight=qweight, scales=quant.scales, qzeros=qzeros, packing="gptq")
    args.update(group_size=g, g_idx=g_idx.to(torch.int32))
    w = gemm_int4.prepare_native(args)["qweight"]
    assert w.native is not None and w.dense is None and w.perm is not None
    x = torch.randn(rows, k, generator=gen).to(torch.bfloat16)
    got = gemm_int4.int4(x, w, "gptq", g)
    want = reference(x=x.float(), **{**args, "scales": quant.scales.float()})
    assert got.dtype == torch.bfloat16
    assert float((got.float() - want).norm() / want.norm()) < 5e-3


# gemm.w4a8's VNNI kernel against its reference in float64: the activation codes are defined
# bit for bit (float32), the block dots are exact integers, so with float32 output the only
# difference is float32 rounding of the per-block scaling and the sums across blocks. rows 1
# and 2: the 4- and 2-block GEMVs (n=200: 12 whole blocks and a partial one); 3, 5, 16: row
# tiles of 4 and a tail; 130: past NATIVE_MAX_M (dequantized weight, bf16 matmul).
@pytest.mark.parametrize("rows", (1, 2, 3, 5, 16, 130))
@pytest.mark.parametrize("group_size, n, k", ((32, 200, 576), (128, 64, 256), (8, 40, 64)))
@pytest.mark.parametrize("float_zeros", (False, True))
def test_w4a8_matches_its_reference(ops, rows, group_size, n, k, float_zeros):
    from sglang.ops.gemm_w4a8 import w4a8
    from sglang.ops.quant import int4 as q4
    from sglang_xeon.kernels import gemm_w4a8

    if not ops.w4a8_supported():
        pytest.skip("built without AVX-512 VNNI")
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(n, k, generator=gen) * k**-0.5
    quant = q4.quantize_int4(w, group_size, scale_dtype=torch.bfloat16, float_zeros=float_zeros)
    if float_zeros:
        qweight, qzeros = q4.pack_qweight(quant.q, "awq"), quant.zeros
    else:
        qweight, qzeros = q4.pack_awq(quant.q, quant.zeros)
    args = dict(qweight=qweight, scales=quant.scales, qzeros=qzeros, packing="awq")
    prepared = gemm_w4a8.prepare_native({**args, "group_size": group_size})
    assert isinstance(prepared["qweight"], gemm_w4a8.W4A8Weight)
    x = torch.randn(rows, k, generator=gen).to(torch.bfloat16)
    f64 = {**args, "scales": quant.scales.double()}
    if float_zeros:
        f64["qzeros"] = qzeros.double()
    want = w4a8(x=x.double(), group_size=group_size, **f64)
    for xt in (x, x.float()):
        got = gemm_w4a8.native_w4a8(x=xt, group_size=group_size, **prepared)
        assert got.shape == (rows, n) and got.dtype == xt.dtype
        rel = float((got.double() - want).norm() / want.norm())
        # float32 output: float32 roundings only; bf16 output (or the bf16 matmul past
        # NATIVE_MAX_M): bf16's unit roundoff
        exact = xt.dtype == torch.float32 and rows <= gemm_w4a8.NATIVE_MAX_M
        assert rel < (1e-6 if exact else 4e-3), (xt.dtype, rel)


# Int4 MoE experts in the native form (kernels.moe.prepare): one token (the GEMV), 9 tokens
# crowding 2 experts (a GEMV of several rows), 40 (past NATIVE_MAX_M on the crowded experts:
# the natively dequantized weights); groups of 32 and 64, integer and fractional zero points;
# padded slots; gpt-oss's activation with biases.
@pytest.mark.parametrize("tokens", (1, 9, 40))
@pytest.mark.parametrize("group, float_zeros", ((32, False), (64, True)))
@pytest.mark.parametrize("activation", ("silu", "swigluoai"))
def test_int4_experts_native_form(ops, tokens, group, float_zeros, activation):
    from sglang.ops.moe import experts as reference
    from sglang.ops.quant.experts import quantize_int4_experts
    from sglang_xeon.kernels import moe

    if not ops.int4_gemm_supported():
        pytest.skip("built without AVX-512 BF16")
    e, d, i, top_k = 8, 128, 192, 2
    gen = torch.Generator().manual_seed(5)
    bf16 = torch.bfloat16
    w13 = torch.randn(e, 2 * i, d, generator=gen) * d**-0.5
    w2 = torch.randn(e, d, i, generator=gen) * i**-0.5
    q13, s13, z13 = quantize_int4_experts(w13, group, bf16, float_zeros)
    q2, s2, z2 = quantize_int4_experts(w2, group, bf16, float_zeros)
    args = dict(w13=q13, w2=q2, w13_scale=s13, w2_scale=s2, w13_zeros=z13, w2_zeros=z2)
    prepared = moe.prepare({**args, "activation": activation})
    assert set(prepared) == {"w13", "w2"} and isinstance(prepared["w13"], moe.NativeExperts)
    ids = torch.randint(0, e, (tokens, top_k), generator=gen, dtype=torch.int32)
    ids[: tokens // 2 + 1] = torch.tensor([1, 5], dtype=torch.int32)  # crowd two experts
    if tokens > 1:
        ids[-1, -1] = -1
    call = dict(
        x=torch.randn(tokens, d, generator=gen).to(bf16),
        topk_weights=torch.rand(tokens, top_k, generator=gen).softmax(-1),
        topk_ids=ids,
        activation=activation,
    )
    if activation == "swigluoai":
        call.update(
            w13_bias=(torch.randn(e, 2 * i, generator=gen) * 0.5).to(bf16),
            w2_bias=(torch.randn(e, d, generator=gen) * 0.5).to(bf16),
        )
    got = moe.experts(**call, **prepared)
    want = reference(
        **{
            k: v.double() if v.is_floating_point() else v
            for k, v in call.items()
            if isinstance(v, torch.Tensor)
        },
        activation=activation,
        **{k: v.double() if v.is_floating_point() else v for k, v in args.items()},
    )
    assert got.dtype == bf16
    torch.testing.assert_close(got.double(), want, atol=3e-2, rtol=3e-2)
    # float32 scales: no native form (it holds bf16 scales), the weights as they are
    as_is = moe.prepare({**args, "w13_scale": s13.float(), "w2_scale": s2.float()})
    assert as_is["w13"] is q13 and "w13_zeros" in as_is


# MXFP4 experts in the native form (the e2m1 table): bf16 through the GEMV (1 token) and the
# natively dequantized weights (40 tokens crowding two experts); float32 activations always
# through the dequantized weights, exact (e2m1 times a power of two), so float32's tolerance.
@pytest.mark.parametrize("tokens", (1, 40))
@pytest.mark.parametrize("dtype", (torch.bfloat16, torch.float32))
def test_mxfp4_experts_native_form(ops, tokens, dtype):
    from sglang.ops.moe import experts as reference
    from sglang.ops.quant.experts import quantize_mxfp4_experts
    from sglang_xeon.kernels import moe

    if not ops.int4_gemm_supported():
        pytest.skip("built without AVX-512 BF16")
    e, d, i, top_k = 8, 128, 96, 2
    gen = torch.Generator().manual_seed(6)
    (q13, s13), (q2, s2) = (
        quantize_mxfp4_experts(torch.randn(e, 2 * i, d, generator=gen) * d**-0.5),
        quantize_mxfp4_experts(torch.randn(e, d, i, generator=gen) * i**-0.5),
    )
    args = dict(w13=q13, w2=q2, w13_scale=s13, w2_scale=s2)
    prepared = moe.prepare({**args, "activation": "swigluoai"})
    assert set(prepared) == {"w13", "w2"} and prepared["w13"].codes == moe.E2M1
    ids = torch.randint(0, e, (tokens, top_k), generator=gen, dtype=torch.int32)
    ids[: tokens // 2 + 1] = torch.tensor([2, 6], dtype=torch.int32)
    call = dict(
        x=torch.randn(tokens, d, generator=gen).to(dtype),
        topk_weights=torch.rand(tokens, top_k, generator=gen).softmax(-1),
        topk_ids=ids,
        w13_bias=(torch.randn(e, 2 * i, generator=gen) * 0.5).to(dtype),
        w2_bias=(torch.randn(e, d, generator=gen) * 0.5).to(dtype),
    )
    got = moe.experts(**call, activation="swigluoai", **prepared)
    wide = {k: v.double() if v.is_floating_point() else v for k, v in call.items()}
    want = reference(**wide, activation="swigluoai", **args)
    assert got.dtype == dtype
    tol = 3e-2 if dtype == torch.bfloat16 else 1e-4
    torch.testing.assert_close(got.double(), want, atol=tol, rtol=tol)


# The native form dequantized (csrc int4_bf16_dequantize, AVX-512) against the same arithmetic
# in torch, bit for bit: (value(q) - z) * s in float32, rounded to bf16. n = 40: two whole
# column blocks and a partial one; groups of 32 and 128; int4 with fractional zero points and
# MXFP4 (e2m1 values, power-of-two scales, no zero points).
@pytest.mark.parametrize("codes, group", ((0, 32), (0, 128), (1, 32)))
def test_native_form_dequantizes_bit_for_bit(ops, codes, group):
    from sglang.ops.quant import fp4 as q4
    from sglang_xeon.kernels import gemm_int4

    if not ops.int4_gemm_supported():
        pytest.skip("built without AVX-512 BF16")
    gen = torch.Generator().manual_seed(7)
    n, k = 40, 256
    q = torch.randint(0, 16, (n, k), generator=gen, dtype=torch.int32)
    if codes == 0:
        scales = (torch.rand(k // group, n, generator=gen) * 0.1).to(torch.bfloat16)
        zeros = (torch.rand(k // group, n, generator=gen) * 15).to(torch.bfloat16)
        values = q.float()
    else:
        e = torch.randint(110, 135, (k // group, n), generator=gen)
        scales, zeros = torch.exp2(e.float() - 127).to(torch.bfloat16), None
        values = q4.e2m1_decode(q.to(torch.uint8))
    form = gemm_int4.native_form(q, scales, zeros, group)
    got = ops.int4_dequantize(form, group, n, k, codes)
    s = scales.float().t().repeat_interleave(group, 1)
    z = 0.0 if zeros is None else zeros.float().t().repeat_interleave(group, 1)
    want = ((values - z) * s).to(torch.bfloat16)
    assert torch.equal(got, want)
