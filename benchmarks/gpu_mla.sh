#!/usr/bin/env bash
# One GPU call for the Triton MLA kernels (issue 15), under 560 s (530 s of steps, each capped):
#   1. tests/cuda/test_mla_triton.py on the GPU (spec cases, extra geometries, CUDA-graph
#      capture and replay of mla_decode / mla_extend at new lengths, tiny DeepSeek-V2 model
#      check) and the MLA conformance cases on cuda;
#   2. DeepSeek greedy parity with transformers on cuda (tests/engine/test_parity.py);
#   3. kernel times at DeepSeek-V2-Lite's geometry (benchmarks/bench_mla.py; 16 and 128 heads),
#      and mla_decode's launch candidates (--tune: the 3 fastest per shape, with the default's);
#   4. DeepSeek-V2-Lite config, dummy bf16 weights: batch-1 ITL (before: 38.8 ms eager, decode
#      graph capture failed on the reference MLA ops) and offline 256 x 1024/256.
# Usage: bash benchmarks/gpu_mla.sh OUTDIR.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
KEEP='^\{|^== |passed|failed|FAILED|Error|capture'
source benchmarks/gpu_step.sh
PYT="python3 -m pytest -q -p no:cacheprovider -rf --tb=short"
MOE="python3 benchmarks/bench_moe.py --device cuda --out $DIR/moe.jsonl"
step mla-tests 80 $PYT tests/cuda/test_mla_triton.py
step mla-conformance 50 python3 -m sglang.cli.main conformance --backend cuda \
    --ops attention.mla_decode,attention.mla_extend --report "$DIR/mla-conformance.json"
step parity 70 $PYT tests/engine/test_parity.py -k "cuda and deepseek"
step bench-mla 110 python3 benchmarks/bench_mla.py --tune --out "$DIR/mla.jsonl"
step bench-mla-h128 30 python3 benchmarks/bench_mla.py --heads 128 --out "$DIR/mla.jsonl"
step v2lite-itl 90 $MOE --config benchmarks/configs/deepseek-v2-lite --only a
step v2lite-offline 100 $MOE --config benchmarks/configs/deepseek-v2-lite --only c
