#!/usr/bin/env bash
# One GPU call (one H200) for the MoE / MLA models (issue 15), about 8 minutes at most:
#   1. greedy + prompt-logprob parity with transformers on cuda (float32) for the tiny
#      Mixtral, Qwen2-MoE, Qwen3-MoE, DeepSeek-V2-Lite/V2/V3, gpt-oss and Mistral-window models
#   2. Qwen3-30B-A3B config, dummy bf16 weights: batch-1 decode ITL (target <= 2.5 ms) and
#      offline 256 x 1024/256 (target >= 15x transformers), then, our engine freed,
#      transformers' continuous batching on the same prompt ids in its own process (bench_moe.py
#      workload t, timed part capped at 90 s) and the ratio line
#   3. DeepSeek-V2-Lite config: batch-1 ITL and offline throughput (64 prompts; written when
#      cuda ran the reference MLA ops: sglang_triton/mla.py serves them now, see gpu_mla.sh);
#      the KV bytes per token are in the header
#   4. gpt-oss-20b config (experts in bf16, not MXFP4): batch-1 ITL
# Usage: benchmarks/gpu_moe.sh OUTDIR. Results: OUTDIR/moe.jsonl, *.log.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR"
CFG=benchmarks/configs
MOE="python3 benchmarks/bench_moe.py --device cuda --out $DIR/moe.jsonl"
QUIET='it/s\]| INFO '

timeout 120 python3 -m pytest -q -p no:cacheprovider tests/engine/test_parity.py \
    -k "cuda and (mistral-swa or mixtral or moe or deepseek or gpt-oss)" 2>&1 \
    | tail -15 | tee "$DIR/parity.log"
timeout 330 $MOE --config $CFG/qwen3-30b-a3b --only act --hf-max-s 90 2>&1 | grep -Ev "$QUIET" \
    | tee "$DIR/qwen3-30b-a3b.log" | tail -14
timeout 120 $MOE --config $CFG/deepseek-v2-lite --only ac --random-prompts 64 2>&1 \
    | grep -Ev "$QUIET" | tee "$DIR/deepseek-v2-lite.log" | tail -12
timeout 90 $MOE --config $CFG/gpt-oss-20b --only a 2>&1 | grep -Ev "$QUIET" \
    | tee "$DIR/gpt-oss-20b.log" | tail -8
grep -h "^==" "$DIR"/*.log
