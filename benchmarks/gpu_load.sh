#!/usr/bin/env bash
# Serving under load on one GPU (issue 20), one server start for every run: our server on the
# Llama-3.1-8B config with random weights (bfloat16), then python -m sglang.bench_serving:
#   ttft16  TTFT of a 16-token prompt (random ids, 16 out, one request at a time, 30 prompts)
#   r16     ShareGPT 500 at 16 req/s (per-request details in r16.jsonl)
#   r32     ShareGPT 500 at 32 req/s
#   rinf    ShareGPT 500 all at once (offline rate through the server)
# The prefix cache is flushed before each run (the same 500 prompts would hit it).
# Usage: [RUNS="ttft16 r16 r32 rinf"] [SERVER_ARGS=...] [CONTEXT=4096]
#   benchmarks/gpu_load.sh OUTDIR
# Carry .wheels and .bench8b/serving, as for benchmarks/gpu_serving.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; RUNS=${RUNS:-ttft16 r16 r32 rinf}; TOKENIZER=${TOKENIZER:-tokenizer}
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
python3 -m sglang.launch_server --model-path "$MODEL" --load-format dummy --device cuda \
    --dtype bfloat16 --context-length "${CONTEXT:-4096}" --port 30000 ${SERVER_ARGS:-} \
    >"$DIR/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 300); do
    curl -sf localhost:30000/health >/dev/null && break
    kill -0 $SERVER 2>/dev/null || { tail -30 "$DIR/server.log"; exit 1; }
    sleep 1
done
grep -E "captured|KV pool" "$DIR/server.log"
BENCH="python3 -m sglang.bench_serving --backend sglang --port 30000 --tokenizer $MODEL
    --disable-tqdm --flush-cache"
SHAREGPT="--dataset-name sharegpt --dataset-path .bench8b/serving/sharegpt2000.json --num-prompts 500"
summary() { grep -E "Request throughput|Median TTFT|P99 TTFT|Median TPOT|P99 TPOT|Median ITL|Successful" "$1"; }
for run in $RUNS; do
    echo "== $run (started $(date +%T.%N | cut -c1-12))"
    case $run in
        ttft16) timeout 120 $BENCH --dataset-name random-ids --random-input-len 16 \
            --random-output-len 16 --num-prompts 30 --max-concurrency 1 \
            --output-file "$DIR/load.jsonl" >"$DIR/$run.log" 2>&1 ;;
        r16) timeout 200 $BENCH $SHAREGPT --request-rate 16 --output-details \
            --output-file "$DIR/r16.jsonl" >"$DIR/$run.log" 2>&1 ;;
        r32) timeout 150 $BENCH $SHAREGPT --request-rate 32 --output-file "$DIR/load.jsonl" \
            >"$DIR/$run.log" 2>&1 ;;
        rinf) timeout 150 $BENCH $SHAREGPT --output-file "$DIR/load.jsonl" \
            >"$DIR/$run.log" 2>&1 ;;
    esac
    summary "$DIR/$run.log"
done
kill -TERM $SERVER; wait $SERVER
echo "server exit $?"
