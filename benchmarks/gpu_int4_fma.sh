#!/usr/bin/env bash
# One device call for the CUDA-core int4 GEMV at one row (sglang_cuda.kernels.gemv_int4_fma_cuda,
# built without a GPU on 2026-12-06, off by default until timed), each step capped:
#   tests  its tests against the spec's reference (and the tensor-core kernel's), then AWQ /
#          GPTQ checkpoints through the model against transformers with it switched on
#   micro  bench_decode_gemv.py --only int4 --launch-key cuda_fma: its launches at one row on
#          Llama-3.1-8B's AWQ shapes against the default (the tensor-core CUDA kernel)
#   sweep  its launch table in the AWQ 8B's batch-1 graph (sweep_decode_launch.py), with the
#          scheduler loop's ITL for the defaults and the best; the best launch in best-awq.json
#   itl    batch-1 ITL with main's defaults: AWQ; on an H200 also FP8 block, Qwen3-30B-A3B bf16
# Usage: [PARTS="tests micro sweep itl"] bash benchmarks/gpu_int4_fma.sh OUTDIR  (carry .wheels;
#   the logs in OUTDIR.tgz).
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; PARTS=${PARTS:-tests micro sweep itl}
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
KEEP='^== |passed|failed|FAILED|Error|best|total|defaults|scheduler loop|ms$|us '
source benchmarks/gpu_step.sh
cat "$DIR/gpu.txt"
PYTEST="python3 -m pytest -q -p no:cacheprovider -rf --tb=short"
FMA_ON="from sglang_cuda.kernels import gemv_int4_fma_cuda as m; m.GEMV_INT4_FMA_LAUNCH['enabled'] = True"
for part in $PARTS; do
    case $part in
        tests)
            step tests 150 $PYTEST tests/cuda/test_gemv_int4_fma_cuda.py \
                tests/cuda/test_gemv_int4_cuda.py -k "not compiles and not emulat"
            step model 120 python3 -c "$FMA_ON
import sys, pytest
sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-rf', '--tb=short', '-k', 'cuda',
                      'tests/layers/quantization/test_awq_gptq.py']))" ;;
        micro)
            step micro 150 python3 benchmarks/bench_decode_gemv.py --only int4 \
                --launch-key cuda_fma --out "$DIR/micro.jsonl" ;;
        sweep)
            python3 -c "
import json, sys
sys.path.insert(0, 'benchmarks')
import sweep_decode_launch as s
json.dump([s._INT4_FMA], open('$DIR/spec-fma.json', 'w'))"
            step sweep 240 python3 benchmarks/sweep_decode_launch.py --device cuda \
                --preset llama8b-awq --spec "$DIR/spec-fma.json" --budget-s 100 --itl \
                --out "$DIR/sweep.jsonl" --best "$DIR/best-awq.json" ;;
        itl)
            step awq 60 python3 benchmarks/bench_cuda_llama8b.py --device cuda --quant awq \
                --only a --out "$DIR/itl.jsonl"
            if grep -q H200 "$DIR/gpu.txt"; then
                step fp8 60 python3 benchmarks/bench_cuda_llama8b.py --device cuda \
                    --quant fp8-block --only a --out "$DIR/itl.jsonl"
                step qwen3 70 python3 benchmarks/bench_moe.py --device cuda --only a \
                    --config benchmarks/configs/qwen3-30b-a3b --out "$DIR/itl.jsonl"
            fi ;;
    esac
done
tar czf "$DIR.tgz" -C "$(dirname "$DIR")" "$(basename "$DIR")" && rm -rf "$DIR"
