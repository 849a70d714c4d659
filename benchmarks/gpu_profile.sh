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
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --target /tmp/site .wheels/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e core -e models -e backends/cuda \
    2>&1 | tail -2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$DIR/gpu.txt"
timeout "${TUNE_S:-200}" python3 benchmarks/tune_cuda_decode.py --batches ${TUNE_BATCHES:-1 8 32 64 128 256} \
    --out "$DIR/tune.jsonl" 2>&1 | tee "$DIR/tune.log" | tail -80
timeout "${BENCH_S:-300}" python3 benchmarks/bench_cuda_llama8b.py --device cuda \
    --sharegpt .bench8b/sharegpt500.json --only "${ONLY:-abd}" --time-split \
    --profile-batch "${PROFILE_BS:-256}" --out "$DIR/llama8b.jsonl" "$@" 2>&1 \
    | grep -v "it/s\]" | grep -v " INFO " | tee "$DIR/bench.log" | tail -60
