#!/usr/bin/env bash
# The decode kernels' launches tuned inside the model's batch-1 decode graph (benchmarks/
# sweep_decode_launch.py), one call: for each preset in PRESETS (default "qwen3 llama8b-awq"),
# a sweep capped at BUDGET seconds of trials (default 200) plus its model load, the step
# times of every candidate in OUTDIR/sweep-PRESET.jsonl, the best launches in
# OUTDIR/best-PRESET.json (launch_overrides format) and the scheduler loop's ITL with the
# defaults and with the best, and the defaults' kernels over 20 steps with PDL and without
# (OUTDIR/profile-PRESET-{pdl,nopdl}.txt: without PDL each kernel's time is its own).
# Usage: [PRESETS="qwen3 llama8b-awq llama8b-fp8 llama8b"] [BUDGET=200] bash benchmarks/gpu_sweep.sh OUTDIR.
# Carry .wheels. Logs in OUTDIR.tgz.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; PRESETS=${PRESETS:-qwen3 llama8b-awq}; BUDGET=${BUDGET:-200}
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
KEEP='^== |<- best|defaults|failed|Error'
source benchmarks/gpu_step.sh
for preset in $PRESETS; do
    step "sweep-$preset" $((BUDGET + 150)) python3 benchmarks/sweep_decode_launch.py --preset "$preset" \
        --device cuda --budget-s "$BUDGET" --itl --out "$DIR/sweep-$preset.jsonl" \
        --best "$DIR/best-$preset.json" --profile "$DIR/profile-$preset"
done
tar czf "$DIR.tgz" -C "$(dirname "$DIR")" "$(basename "$DIR")" && rm -rf "$DIR"
