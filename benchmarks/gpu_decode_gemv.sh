#!/usr/bin/env bash
# The few-row (decode) kernels on one GPU, under 400 s (each step capped):
#   1. micro-benchmarks at M = 1 (benchmarks/bench_decode_gemv.py): gemm.fp8 128x128 blocks
#      and gemm.int4 (AWQ, group 128) on the Llama-3.1-8B shapes (N x K = 6144x4096,
#      4096x4096, 28672x4096, 4096x14336), moe.experts on Qwen3-30B-A3B's experts (128 x
#      2048 x 768, top-8): the new GEMV kernels over 4 launch configs vs the old paths, GB/s;
#   2. batch-1 decode ITL (in 128 / out 256): Llama-3.1-8B FP8 block-wise (target <= 2.4 ms)
#      and AWQ (target <= 1.9 ms), Qwen3-30B-A3B bf16 (target <= 2.5 ms), dummy weights;
#   3. the touched kernels' tests on the GPU: tests/cuda -k "fp8 or int4 or moe or gemv".
# Usage: source benchmarks/gpu_setup.sh OUTDIR; bash benchmarks/gpu_decode_gemv.sh OUTDIR
# Results: OUTDIR/decode_gemv.jsonl (kernels), OUTDIR/itl.jsonl (ITL), OUTDIR/*.log.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR"
QUIET='it/s\]| INFO '
step() {  # step NAME SECONDS COMMAND...: run capped, log to DIR/NAME.log, report the status
    local name=$1 cap=$2
    shift 2
    echo "== $name (cap ${cap}s)"
    timeout "$cap" "$@" > "$DIR/$name.log" 2>&1
    local rc=$?
    grep -Ev "$QUIET" "$DIR/$name.log" | tail -14
    echo "== $name: exit $rc"
}
step kernels 75 python3 benchmarks/bench_decode_gemv.py --out "$DIR/decode_gemv.jsonl"
B8="python3 benchmarks/bench_cuda_llama8b.py --device cuda --out $DIR/itl.jsonl"
step itl-fp8-block 85 $B8 --quant fp8-block --only a
step itl-awq 75 $B8 --quant awq --only a
step itl-qwen3-30b-a3b 85 python3 benchmarks/bench_moe.py --device cuda \
    --config benchmarks/configs/qwen3-30b-a3b --only a --out "$DIR/itl.jsonl"
step tests 80 python3 -m pytest -q -p no:cacheprovider tests/cuda \
    -k "fp8 or int4 or moe or gemv"
grep -h "^== \|ITL\|itl" "$DIR"/itl-*.log | grep -v "^== .*(cap" | tail -20
