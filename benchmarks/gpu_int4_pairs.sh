#!/usr/bin/env bash
# One device call for gemm.int4's float16 (scale, zero) pairs (sglang_triton.gemm_int4.PAIRS:
# half the scale bytes a W4A16 decode step reads), each step capped:
#   tests  the CUDA int4 GEMV in both layouts against the spec's reference, their outputs bit
#          for bit, the norm-fused kernel's GPU cases (pairs by default)
#   itl    batch-1 ITL of the AWQ 8B (dummy weights), pairs then float32 scales in the same call
# Usage: [PARTS="tests itl"] bash benchmarks/gpu_int4_pairs.sh OUTDIR  (carry .wheels; the logs
#   in OUTDIR.tgz).
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; PARTS=${PARTS:-tests itl}
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
KEEP='^== |passed|failed|FAILED|Error|scheduler loop|ms$'
source benchmarks/gpu_step.sh
cat "$DIR/gpu.txt"
PYTEST="python3 -m pytest -q -p no:cacheprovider -rf --tb=short"
F32="from sglang_triton import gemm_int4 as m; m.PAIRS = False"
for part in $PARTS; do
    case $part in
        tests)
            step tests 100 $PYTEST tests/cuda/test_gemv_int4_cuda.py \
                tests/cuda/test_gemv_int4_rms_cuda.py -k "not compiles and not launches" ;;
        itl)
            step awq-pairs 70 python3 benchmarks/bench_cuda_llama8b.py --device cuda --quant awq \
                --only a --out "$DIR/itl.jsonl"
            step awq-f32 70 python3 -c "$F32
import runpy, sys
sys.path.insert(0, 'benchmarks')
sys.argv = ['bench_cuda_llama8b.py', '--device', 'cuda', '--quant', 'awq', '--only', 'a',
            '--out', '$DIR/itl-f32.jsonl']
runpy.run_path('benchmarks/bench_cuda_llama8b.py', run_name='__main__')" ;;
    esac
done
tar czf "$DIR.tgz" -C "$(dirname "$DIR")" "$(basename "$DIR")" && rm -rf "$DIR"
