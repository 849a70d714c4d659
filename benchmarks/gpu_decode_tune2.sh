#!/usr/bin/env bash
# Second decode-tuning call (after gpu_decode_tune.sh set the int4 default): the fp8 GEMV with
# activations quantized once per call, the bf16 GEMV against cuBLAS (LM head included), the
# batch-1 ITL with the picked launches, and FP8 against bf16 offline (256 x 1024/256) in one
# call. Under 560 s, each step capped. Usage: bash benchmarks/gpu_decode_tune2.sh OUTDIR.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
KEEP='^best|^== |: old|passed|failed|Error'
source benchmarks/gpu_step.sh
step kernels 100 python3 benchmarks/bench_decode_gemv.py --only fp8,dense \
    --out "$DIR/decode_gemv.jsonl" --pick-best "$DIR/best.json"
LO=""
[ -s "$DIR/best.json" ] && LO="--launch-overrides $DIR/best.json"
B8="python3 benchmarks/bench_cuda_llama8b.py --device cuda --out $DIR/itl.jsonl"
step bf16-default 140 $B8 --quant none --only acd --sharegpt .bench8b/sharegpt500.json
step fp8-block 110 $B8 $LO --quant fp8-block --only ac
[ -n "$LO" ] && step bf16-picked 60 $B8 $LO --quant none --only a
step awq 60 $B8 --quant awq --only a
step qwen3-30b-a3b 75 python3 benchmarks/bench_moe.py --device cuda $LO \
    --config benchmarks/configs/qwen3-30b-a3b --only a --out "$DIR/itl.jsonl"
grep -h "^launch override" "$DIR"/fp8-block.log
