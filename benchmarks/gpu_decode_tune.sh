#!/usr/bin/env bash
# Decode GEMV launches chosen by measurement, then the batch-1 ITL with them, on one GPU
# (under 540 s, each step capped):
#   1. bench_decode_gemv.py over the fp8 (128x128 blocks), int4 (AWQ g128) and bf16 GEMVs'
#      launches, split-K included, on the Llama-3.1-8B shapes; --pick-best writes the fastest
#      launch per family (and whether it beats the path it replaces) to OUTDIR/best.json;
#   2. batch-1 decode ITL (in 128 / out 256, dummy weights) with those launches
#      (--launch-overrides): Llama-3.1-8B bf16, FP8 block-wise, AWQ; Qwen3-30B-A3B bf16;
#   3. the GEMV tests on the GPU: tests/cuda -k gemv (split-K launches included).
# Usage: bash benchmarks/gpu_decode_tune.sh OUTDIR. Results: OUTDIR/*.jsonl, OUTDIR/*.log.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
KEEP='^best|^== |^[a-z0-9-]+ .*: old|passed|failed|Error'
source benchmarks/gpu_step.sh
step kernels 170 python3 benchmarks/bench_decode_gemv.py --only fp8,int4,dense \
    --out "$DIR/decode_gemv.jsonl" --pick-best "$DIR/best.json"
LO=""
[ -s "$DIR/best.json" ] && LO="--launch-overrides $DIR/best.json"
B8="python3 benchmarks/bench_cuda_llama8b.py --device cuda --out $DIR/itl.jsonl $LO"
step itl-bf16 75 $B8 --quant none --only a
step itl-fp8-block 75 $B8 --quant fp8-block --only a
step itl-awq 70 $B8 --quant awq --only a
step itl-qwen3-30b-a3b 80 python3 benchmarks/bench_moe.py --device cuda $LO \
    --config benchmarks/configs/qwen3-30b-a3b --only a --out "$DIR/itl.jsonl"
step tests 60 python3 -m pytest -q -p no:cacheprovider tests/cuda -k gemv
grep -h "^launch override" "$DIR"/itl-bf16.log
grep -h "^== " "$DIR"/itl-*.log | grep -v "(cap"
