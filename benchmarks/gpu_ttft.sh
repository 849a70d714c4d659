#!/usr/bin/env bash
# TTFT of a 16-token prompt on one GPU, split by hop (issue 20): benchmarks/ttft_overhead.py on
# the Llama-3.1-8B config with dummy bf16 weights, as benchmarks/gpu_load.sh's ttft16 run.
# Prints the per-segment table (client -> HTTP -> tokenizer manager -> scheduler -> forward ->
# sampling -> back -> first SSE chunk), bench_serving's TTFT on the same server, then the
# in-process prefill step and forward, and TTFT - forward.
# Usage: [SERVER_ARGS=...] [CONTEXT=4096] benchmarks/gpu_ttft.sh OUTDIR
# Carry .wheels and .bench8b/serving, as for benchmarks/gpu_load.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; TOKENIZER=${TOKENIZER:-tokenizer}
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR"
MODEL=$(mktemp -d)
python3 - "$MODEL" "$TOKENIZER" <<'PY'
import glob, json, shutil, sys
sys.path.insert(0, "benchmarks")
from bench_cuda_llama8b import LLAMA_31_8B
json.dump(LLAMA_31_8B, open(f"{sys.argv[1]}/config.json", "w"))
for f in glob.glob(f".bench8b/serving/{sys.argv[2]}/*"):
    shutil.copy(f, sys.argv[1])
PY
timeout 560 python3 benchmarks/ttft_overhead.py --model-path "$MODEL" --bench-serving \
    --port 30000 -- --load-format dummy --device cuda --dtype bfloat16 \
    --context-length "${CONTEXT:-4096}" ${SERVER_ARGS:-} 2>&1 | grep -Ev " INFO |it/s\]" \
    | tee "$DIR/ttft.log"
