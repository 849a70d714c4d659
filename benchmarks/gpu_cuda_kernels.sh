#!/usr/bin/env bash
# One device call for the cuda backend's CUDA C++ decode kernels (sglang_cuda.kernels: the
# dense GEMV, the MoE decode GEMVs for 16-bit experts, the int4 GEMV with x staged in shared
# memory, the block-FP8 GEMV on the CUDA cores, the dense GEMV with the RMS norm inside): their
# GPU tests against the spec's references (and in graphs with PDL) and models through them
# against transformers (the layers' PendingNorm path runs on cuda), then the model's batch-1
# decode step with each switched on, tuned in the model's graph (sweep_decode_launch.py:
# presets qwen3-moe, llama8b-fp8, llama8b-awq by default), with the scheduler loop's ITL for
# the defaults and the best and the best's launch_overrides file. Three presets take more than
# one call's 600 s: STEPS="tests sweep" PRESETS=qwen3-moe, then STEPS=sweep PRESETS="...".
# Usage: [STEPS="tests sweep"] [PRESETS="qwen3-moe llama8b-fp8 llama8b-awq"] [BUDGET=60]
#        bash benchmarks/gpu_cuda_kernels.sh OUTDIR      (carry .wheels; logs in OUTDIR.tgz)
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; PRESETS=${PRESETS:-qwen3-moe llama8b-fp8 llama8b-awq}; BUDGET=${BUDGET:-60}; STEPS=${STEPS:-tests sweep}
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
KEEP='^== |passed|failed|FAILED|Error|<- best|defaults'
source benchmarks/gpu_step.sh
if [[ " $STEPS " == *" tests "* ]]; then
    step tests 300 python3 -m pytest -q -p no:cacheprovider tests/cuda/test_moe_decode_cuda.py \
        tests/cuda/test_gemv_int4_cuda.py tests/cuda/test_gemv_fp8_rows_cuda.py \
        tests/cuda/test_gemv_dense_cuda.py tests/cuda/test_gemv_dense_rms_cuda.py \
        tests/cuda/test_nvrtc.py tests/cuda/test_qwen3_model.py tests/engine/test_gpu_parity.py
fi
if [[ " $STEPS " == *" sweep "* ]]; then
    for preset in $PRESETS; do
        step "sweep-$preset" $((BUDGET + 120)) python3 benchmarks/sweep_decode_launch.py \
            --preset "$preset" --device cuda --budget-s "$BUDGET" --itl \
            --out "$DIR/sweep-$preset.jsonl" --best "$DIR/best-$preset.json"
    done
fi
tar czf "$DIR.tgz" -C "$(dirname "$DIR")" "$(basename "$DIR")" && rm -rf "$DIR"
