#!/usr/bin/env bash
# Online serving on one GPU (the CUDA issue's last workload): our server on a Llama-3.1-8B config
# with random weights (bfloat16), python -m sglang.bench_serving on ShareGPT at a fixed request
# rate. Usage: [TOKENIZER=tokenizer-llama3] [SERVER_ARGS="--enable-mixed-chunk"]
#   benchmarks/gpu_serving.sh OUTDIR [RATE] [NUM_PROMPTS]
# Carry .wheels (server deps missing there) and .bench8b/serving (prepare it here with
# benchmarks/prepare_serving_data.py: a tokenizer, SmolLM2's (tokenizer/, the default) or Llama
# 3's (tokenizer-llama3/), and the first 2000 ShareGPT records; the GPU machine has neither the
# dataset package nor the llama-models package). The server and bench_serving share it.
set -uo pipefail
cd "$(dirname "$0")/.."
# DEVICE=xeon TINY=1 checks the script on a CPU with a 2-layer model of the same vocabulary.
DIR=$1; RATE=${2:-16}; N=${3:-500}; DEVICE=${DEVICE:-cuda}; TOKENIZER=${TOKENIZER:-tokenizer}
mkdir -p "$DIR"
export PYTHONUNBUFFERED=1
if [ "$DEVICE" = cuda ]; then
    source benchmarks/gpu_setup.sh "$DIR"
fi
MODEL=$(mktemp -d)
python3 - "$MODEL" "$TOKENIZER" <<'PY'
import json, shutil, sys, glob
sys.path.insert(0, "benchmarks")
import os
from bench_cuda_llama8b import LLAMA_31_8B, TINY
config = {**LLAMA_31_8B, **(TINY if os.environ.get("TINY") else {})}
json.dump(config, open(f"{sys.argv[1]}/config.json", "w"))
for f in glob.glob(f".bench8b/serving/{sys.argv[2]}/*"):
    shutil.copy(f, sys.argv[1])
PY
python3 -m sglang.launch_server --model-path "$MODEL" --load-format dummy --device "$DEVICE" \
    --dtype bfloat16 --context-length 4096 --port 30000 ${SERVER_ARGS:-} >"$DIR/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 240); do
    curl -sf localhost:30000/health >/dev/null && break
    kill -0 $SERVER 2>/dev/null || { tail -30 "$DIR/server.log"; exit 1; }
    sleep 1
done
python3 -m sglang.bench_serving --backend sglang --port 30000 --dataset-name sharegpt \
    --dataset-path .bench8b/serving/sharegpt2000.json --num-prompts "$N" --request-rate "$RATE" \
    --tokenizer "$MODEL" --disable-tqdm --output-file "$DIR/serving.jsonl" 2>&1 | tee "$DIR/bench_serving.log" | tail -40
kill -TERM $SERVER; wait $SERVER
echo "server exit $?"
grep -E "captur|graph|KV|pool|backend" "$DIR/server.log" | head -20
