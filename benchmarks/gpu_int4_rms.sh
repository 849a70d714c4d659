#!/usr/bin/env bash
# One device call for gemm.int4_rms (a decoder layer's RMS norm inside the tensor-core int4 GEMV
# at one row: sglang_cuda.kernels.gemv_int4_cuda.gemv_int4_rms), each step capped:
#   tests  its tests against the spec's reference (tests/cuda/test_gemv_int4_rms_cuda.py, the
#          int4 GEMV's own), conformance of gemm.int4_rms and gemm.int4 on cuda, and an AWQ
#          checkpoint through the model with and without the fusion against transformers
#   sweep  the int4 table's rms axis (the fusion on, off by default: norm and GEMV as two launches; its weights
#          loaded before griddepcontrol.wait; qkv alone, N <= 8192; a fixed L1 / shared memory
#          carveout for the int4 kernels, with x_smem too) in the AWQ 8B's batch-1
#          decode graph, with the scheduler loop's ITL for the defaults and the best
#   itl    batch-1 ITL with the defaults: AWQ (on an H200 also FP8 block and Qwen3-30B-A3B
#          bf16), then AWQ with the fusion on
# Usage: [PARTS="tests sweep itl"] bash benchmarks/gpu_int4_rms.sh OUTDIR  (carry .wheels; the
#   logs in OUTDIR.tgz).
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; PARTS=${PARTS:-tests sweep itl}
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
KEEP='^== |passed|failed|FAILED|Error|best|total|defaults|scheduler loop|ms$|us |gemm.int4'
source benchmarks/gpu_step.sh
cat "$DIR/gpu.txt"
PYTEST="python3 -m pytest -q -p no:cacheprovider -rf --tb=short"
RMS_ON="from sglang_cuda.kernels import gemv_int4_cuda as m; m.GEMV_INT4_CUDA_LAUNCH['rms'] = True"
for part in $PARTS; do
    case $part in
        tests)
            step tests 150 $PYTEST tests/cuda/test_gemv_int4_rms_cuda.py \
                tests/cuda/test_gemv_int4_cuda.py -k "not compiles"
            step conformance 150 python3 -m sglang.cli.main conformance --backend cuda \
                --ops gemm.int4_rms,gemm.int4 --report "$DIR/conformance.json"
            step model 150 $PYTEST -k cuda tests/engine/test_norm_gemm_fusion.py \
                tests/layers/quantization/test_awq_gptq.py ;;
        sweep)
            python3 -c "
import json
spec = {'name': 'int4 cuda: the norm inside (gemm.int4_rms)',
        'module': 'sglang_cuda.kernels.gemv_int4_cuda', 'table': 'GEMV_INT4_CUDA_LAUNCH',
        'values': [{'rms': True}, {'rms': True, 'rms_max_n': 8192}, {'rms': True, 'carveout': 100},
                   {'carveout': 100}, {'carveout': 25}, {'x_smem': True, 'carveout': 100}]}
json.dump([spec], open('$DIR/spec-rms.json', 'w'))"
            step sweep 200 python3 benchmarks/sweep_decode_launch.py --device cuda \
                --preset llama8b-awq --spec "$DIR/spec-rms.json" --budget-s 90 --itl \
                --out "$DIR/sweep.jsonl" --best "$DIR/best-awq.json" ;;
        itl)
            step awq 60 python3 benchmarks/bench_cuda_llama8b.py --device cuda --quant awq \
                --only a --out "$DIR/itl.jsonl"
            if grep -q H200 "$DIR/gpu.txt"; then
                step fp8 60 python3 benchmarks/bench_cuda_llama8b.py --device cuda \
                    --quant fp8-block --only a --out "$DIR/itl.jsonl"
                step qwen3 70 python3 benchmarks/bench_moe.py --device cuda --only a \
                    --config benchmarks/configs/qwen3-30b-a3b --out "$DIR/itl.jsonl"
            fi
            step awq-rms-on 60 python3 -c "$RMS_ON
import runpy, sys
sys.path.insert(0, 'benchmarks')
sys.argv = ['bench_cuda_llama8b.py', '--device', 'cuda', '--quant', 'awq', '--only', 'a',
            '--out', '$DIR/itl-rms-on.jsonl']
runpy.run_path('benchmarks/bench_cuda_llama8b.py', run_name='__main__')" ;;
    esac
done
tar czf "$DIR.tgz" -C "$(dirname "$DIR")" "$(basename "$DIR")" && rm -rf "$DIR"
