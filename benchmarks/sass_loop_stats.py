"""The main loop of a decode GEMV kernel as ptxas compiles it for an H100/H200 (sm_90), on a
machine without a GPU: registers, spills, the loop's instructions per iteration by opcode, per
KiB of weights it streams, and how many of its tensor-core results it waits for inside the
loop (a `warp_group_dot_wait` with 0 pending drains the MMA pipe every step).

    python benchmarks/sass_loop_stats.py [--kernel int4-mma|fp8-block-mma]
        [--launch '{"block_n": 256, "num_warps": 8}'] [--rows 1] [--json]

The launch JSON overrides the kernel's default table (gemv_int4.GEMV_INT4_MMA_LAUNCH,
gemv_fp8.GEMV_FP8_BLOCK_LAUNCH). The kernel is specialised as Triton's JIT specialises
a decode call: pointers, strides, N and K divisible by 16, M = 1 a constant. Uses the installed
Triton's ptxas and cuobjdump; to see what the GPU image's Triton makes, put another Triton
first on PYTHONPATH (`pip install --target DIR --no-deps triton==3.6.0`).

What this measures is issue work, not time: a kernel bound by memory latency or by MMA drains
runs no faster for fewer instructions. Time it on the GPU (bench_decode_gemv.py).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile

os.environ.pop("TRITON_INTERPRET", None)  # the compiler, not the interpreter

B, I32, F32, C = "*bf16", "i32", "*fp32", "constexpr"


def int4_mma(launch: dict, rows: int):
    from sglang_triton import gemv_int4

    cfg = {**gemv_int4.GEMV_INT4_MMA_LAUNCH, **launch}
    # the scales as float16 (scale, zero) pairs: the layout AWQ / GPTQ checkpoints get
    sig = dict(X=B, QW="*i32", S="*fp16", ZS="*fp16", PERM="*i32", B=B, Y=B, PART=F32, COUNT="*i32",
               M=I32, N=I32, K=I32, steps_per_split=I32, stride_xm=I32, stride_qk=I32,
               stride_s=I32, stride_ym=I32, ROWS=C, G=C, BK=C, HAS_PERM=C, HAS_BIAS=C,
               BLOCK_N=C, SPLIT=C, FP16=C, ASM=C, ONES=C, PAIRS=C)  # fmt: skip
    consts = dict(ROWS=rows, G=128, BK=128, HAS_PERM=False, HAS_BIAS=False,
                  BLOCK_N=cfg["block_n"], SPLIT=1, FP16=False, ASM=bool(cfg["asm"]),
                  ONES=bool(cfg["ones"]), PAIRS=True)  # fmt: skip
    # bytes of weights per loop iteration: a [BLOCK_N, 128] tile of nibbles
    return gemv_int4._int4_mma_kernel, sig, consts, cfg, cfg["block_n"] * 128 // 2


def fp8_block_mma(launch: dict, rows: int):
    from sglang_cuda.kernels import gemv_fp8

    cfg = {**gemv_fp8.GEMV_FP8_BLOCK_LAUNCH, **launch}
    sig = dict(XQ="*fp8e4nv", XS=F32, W="*fp8e4nv", WS=F32, B=B, Y=B, PART=F32, COUNT="*i32",
               M=I32, N=I32, K=I32, steps_per_split=I32, stride_xm=I32, stride_xs=I32,
               stride_wn=I32, stride_ws=I32, stride_ym=I32, HAS_BIAS=C, GROUP_N=C, KC=C,
               BLOCK_N=C, SPLIT=C, FUSED=C, EMULATE=C)  # fmt: skip
    consts = dict(HAS_BIAS=False, GROUP_N=128, KC=128, BLOCK_N=cfg["block_n"], SPLIT=1,
                  FUSED=0, EMULATE=False)  # fmt: skip
    return gemv_fp8._fp8_block_mma_kernel, sig, consts, cfg, cfg["block_n"] * 128


KERNELS = {"int4-mma": int4_mma, "fp8-block-mma": fp8_block_mma}


def compile_sm90(fn, sig: dict, consts: dict, rows: int, warps: int, stages: int):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = list(fn.arg_names)
    sig, consts = dict(sig), dict(consts)
    if "PDL" in names:
        sig["PDL"], consts["PDL"] = C, True
    if rows == 1:  # the JIT makes an integer argument equal to 1 a constant
        sig["M"], consts["M"] = C, 1
    attrs = {
        (names.index(n),): [["tt.divisibility", 16]]
        for n, t in sig.items()
        if t.startswith("*") or n.startswith("stride") or n in ("N", "K")
    }
    src = ASTSource(fn=fn, signature=sig, constexprs=consts, attrs=attrs)
    opts = {"num_warps": warps, "num_stages": stages}
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=opts)


def _tool(name: str) -> str:
    import triton

    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)
    if not os.path.exists(path):
        sys.exit(f"triton's NVIDIA tools are not installed here ({path} is missing)")
    return path


def sass_of(cubin: bytes) -> tuple[str, dict]:
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
    try:
        sass = subprocess.run(
            [_tool("cuobjdump"), "-sass", f.name], capture_output=True, text=True, check=True
        ).stdout
        use = subprocess.run(
            [_tool("cuobjdump"), "--dump-resource-usage", f.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    line = next(x for x in use.splitlines() if "REG:" in x)
    return sass, dict(kv.split(":", 1) for kv in line.split() if ":" in kv)


INSTR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")


def opcode(text: str) -> str:
    """The opcode of a SASS instruction, without its predicate and modifiers."""
    words = text.split()
    if words[0].startswith("@"):
        words = words[1:]
    return words[0].split(".")[0]


def longest_loop(sass: str) -> list[str]:
    """The instructions of the largest backward-branch body (the kernel's main loop)."""
    ins = [(int(m.group(1), 16), m.group(2)) for m in INSTR.finditer(sass)]
    at = {addr: i for i, (addr, _) in enumerate(ins)}
    best: list[str] = []
    for i, (addr, text) in enumerate(ins):
        if opcode(text) != "BRA":
            continue
        target = re.search(r"0x([0-9a-f]+)", text.split("BRA", 1)[1])
        if target and int(target.group(1), 16) < addr:
            body = [t for _, t in ins[at.get(int(target.group(1), 16), i) : i + 1]]
            best = max(best, body, key=len)
    return best


def loop_waits(ttgir: str) -> dict[str, int]:
    """warp_group_dot_wait ops inside scf.for bodies, by their pending count."""
    waits: collections.Counter = collections.Counter()
    depth = 0
    for line in ttgir.splitlines():
        if "scf.for" in line:
            depth += 1
        if depth and "warp_group_dot_wait" in line:
            m = re.search(r"pendings = (\d+)", line)
            waits[int(m.group(1)) if m else -1] += 1
        if depth and line.strip().startswith("scf.yield"):
            depth -= 1
    return {str(k): v for k, v in sorted(waits.items())}


def stats(kernel: str, launch: dict, rows: int) -> dict:
    fn, sig, consts, cfg, tile_bytes = KERNELS[kernel](launch, rows)
    compiled = compile_sm90(fn, sig, consts, rows, cfg["num_warps"], cfg["num_stages"])
    sass, use = sass_of(compiled.asm["cubin"])
    loop = longest_loop(sass)
    mix = collections.Counter(opcode(t) for t in loop)
    warps = cfg["num_warps"]
    import triton

    return {
        "kernel": kernel,
        "triton": triton.__version__,
        "launch": {k: cfg[k] for k in ("block_n", "num_warps", "num_stages") if k in cfg},
        "rows": rows,
        "registers": int(use["REG"]),
        "stack_bytes": int(use["STACK"]),
        "loop_instructions_per_warp": len(loop),
        "weight_bytes_per_iteration": tile_bytes,
        "warp_instructions_per_kib": round(len(loop) * warps * 1024 / tile_bytes, 1),
        "loop_dot_waits_by_pending": loop_waits(compiled.asm["ttgir"]),
        "mix": dict(mix.most_common()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", choices=sorted(KERNELS), default="int4-mma")
    ap.add_argument("--launch", default="{}", help="JSON overriding the default launch")
    ap.add_argument("--rows", type=int, default=1, help="rows of x (M)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    s = stats(args.kernel, json.loads(args.launch), args.rows)
    if args.json:
        print(json.dumps(s))
        return 0
    print(f"{s['kernel']} {s['launch']} M={s['rows']} (Triton {s['triton']}): "
          f"{s['registers']} registers, "
          f"{s['stack_bytes']} B stack")  # fmt: skip
    print(f"main loop: {s['loop_instructions_per_warp']} instructions a warp per iteration, "
          f"{s['weight_bytes_per_iteration']} B of weights a program; "
          f"{s['warp_instructions_per_kib']} warp-instructions per KiB")  # fmt: skip
    print(f"tensor-core waits in the loop, by pending count: {s['loop_dot_waits_by_pending']}")
    print("mix:", ", ".join(f"{k} {v}" for k, v in s["mix"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
