#!/usr/bin/env bash
# One GPU call of the CUDA performance work (attention kernels, decode graphs, Llama-3.1-8B).
# Usage: benchmarks/gpu_llama8b.sh STAGE OUTDIR [bench_cuda_llama8b.py flags...]
#   check  the Triton attention tests on the GPU, graphs on/off greedy tokens on a tiny Llama,
#          attention conformance, then workloads a and b (batch-1 ITL, decode step sweep)
#   all    graphs on/off tokens, then workloads a-e under `timeout $BUDGET_S` (default 240)
#   bench  workloads c, d, e (offline random, ShareGPT from .bench8b/sharegpt500.json, shared
#          prefix); extra flags pass through
# Installs the carried wheels (.wheels) and the repo's packages first.
set -uo pipefail
cd "$(dirname "$0")/.."
STAGE=$1; DIR=$2; shift 2
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR"
B8="python3 benchmarks/bench_cuda_llama8b.py --device cuda --sharegpt ${SHAREGPT:-.bench8b/sharegpt500.json}"
if [ "$STAGE" = check ]; then
    python3 -m pytest -q -x -p no:cacheprovider tests/cuda/test_attention_triton.py \
        tests/model_executor/test_graph_runner.py 2>&1 | tail -15 | tee "$DIR/tests.log"
    python3 -m sglang.cli.main conformance --backend cuda --ops attention.decode,attention.extend \
        --report "$DIR/attn-conformance.json" 2>&1 | tail -6
    $B8 --only ab --profile-batch 1 --out "$DIR/llama8b.jsonl" "$@" 2>&1 \
        | tee "$DIR/bench.log" | tail -60
elif [ "$STAGE" = all ]; then  # graphs on/off tokens, then every workload within BUDGET_S
    python3 -m pytest -q -p no:cacheprovider tests/model_executor/test_graph_runner.py \
        -k captured 2>&1 | tail -5 | tee "$DIR/tests.log"
    timeout "${BUDGET_S:-240}" $B8 --only abcde --out "$DIR/llama8b.jsonl" "$@" 2>&1 \
        | grep -v "it/s\]" | tee "$DIR/bench.log" | tail -40
else
    $B8 --only cde --out "$DIR/llama8b.jsonl" "$@" 2>&1 | grep -v " INFO " \
        | tee "$DIR/bench.log" | tail -40
fi
