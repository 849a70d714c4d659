#!/usr/bin/env bash
# One GPU call that shows where a decode step's time goes on Llama-3.1-8B (dummy weights):
#   1. the decode attention kernel over launch parameters, and the GEMMs, at decode batch sizes
#      (benchmarks/tune_cuda_decode.py);
#   2. batch-1 ITL, a profiled decode step at batch $PROFILE_BS, and offline ShareGPT with the
#      forward-time / host-time split (bench_cuda_llama8b.py --time-split).
# Usage: benchmarks/gpu_profile.sh OUTDIR [bench_cuda_llama8b.py flags...]
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; shift
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR"
timeout "${TUNE_S:-200}" python3 benchmarks/tune_cuda_decode.py --batches ${TUNE_BATCHES:-1 8 32 64 128 256} \
    --out "$DIR/tune.jsonl" 2>&1 | tee "$DIR/tune.log" | tail -80
timeout "${BENCH_S:-300}" python3 benchmarks/bench_cuda_llama8b.py --device cuda \
    --sharegpt .bench8b/sharegpt500.json --only "${ONLY:-abd}" --time-split \
    --profile-batch "${PROFILE_BS:-256}" --out "$DIR/llama8b.jsonl" "$@" 2>&1 \
    | grep -v "it/s\]" | grep -v " INFO " | tee "$DIR/bench.log" | tail -60
