#!/usr/bin/env bash
# One device call for the int4 GEMV's ring variant (GEMV_INT4_CUDA_LAUNCH["ring"]: N chunks of
# weights in flight a warp, built without a GPU on 2026-12-06) and the H200 figures issues 14
# and 15 still lack, each step capped:
#   tests  the kernel's tests (the ring launches against the spec's reference) and AWQ / GPTQ
#          checkpoints through the model against transformers
#   micro  bench_decode_gemv.py --only int4 --launch-key cuda: the CUDA kernel's launches at one
#          row on Llama-3.1-8B's shapes (the ring at 2, 3, 4 chunks among them)
#   sweep  the int4 axis in the AWQ 8B's batch-1 graph (sweep_decode_launch.py), with the
#          scheduler loop's ITL for the defaults and the best; the best launch in best-awq.json
#   itl    batch-1 ITL with main's defaults: AWQ, FP8 block, Qwen3-30B-A3B bf16, gpt-oss-20b MXFP4
# Usage: [PARTS="tests micro sweep itl"] bash benchmarks/gpu_int4_ring.sh OUTDIR  (carry .wheels;
#   the logs in OUTDIR.tgz). About 6 minutes on an H100 with a warm start.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; PARTS=${PARTS:-tests micro sweep itl}
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
KEEP='^== |passed|failed|FAILED|Error|best|total|defaults|scheduler loop|ms$'
source benchmarks/gpu_step.sh
cat "$DIR/gpu.txt"
PYTEST="python3 -m pytest -q -p no:cacheprovider -rf --tb=short"
for part in $PARTS; do
    case $part in
        tests)
            step tests 120 $PYTEST tests/cuda/test_gemv_int4_cuda.py tests/cuda/test_nvrtc.py \
                tests/layers/quantization/test_awq_gptq.py -k "cuda or nvrtc" ;;
        micro)
            step micro 90 python3 benchmarks/bench_decode_gemv.py --only int4 --launch-key cuda \
                --out "$DIR/micro.jsonl" ;;
        sweep)
            python3 -c "
import json, sys
sys.path.insert(0, 'benchmarks')
import sweep_decode_launch as s
json.dump([s._INT4_WARPS], open('$DIR/spec-int4.json', 'w'))"
            step sweep 170 python3 benchmarks/sweep_decode_launch.py --device cuda \
                --preset llama8b-awq --spec "$DIR/spec-int4.json" --budget-s 60 --itl \
                --out "$DIR/sweep.jsonl" --best "$DIR/best-awq.json" ;;
        itl)
            step awq 60 python3 benchmarks/bench_cuda_llama8b.py --device cuda --quant awq \
                --only a --out "$DIR/itl.jsonl"
            step fp8 60 python3 benchmarks/bench_cuda_llama8b.py --device cuda --quant fp8-block \
                --only a --out "$DIR/itl.jsonl"
            step qwen3 70 python3 benchmarks/bench_moe.py --device cuda --only a \
                --config benchmarks/configs/qwen3-30b-a3b --out "$DIR/itl.jsonl"
            step gpt-oss 70 python3 benchmarks/bench_moe.py --device cuda --only a \
                --config benchmarks/configs/gpt-oss-20b --keep-quantization --out "$DIR/itl.jsonl" ;;
    esac
done
tar czf "$DIR.tgz" -C "$(dirname "$DIR")" "$(basename "$DIR")" && rm -rf "$DIR"
