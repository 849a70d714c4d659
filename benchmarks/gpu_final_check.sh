#!/usr/bin/env bash
# The quantized-checkpoint tests on cuda three ways (defaults; the decode GEMVs off; also
# torch._scaled_mm off), to tell which path a failure is on, then gpt-oss-20b's batch-1 ITL
# and the MoE / gpt-oss parity on cuda. Under 450 s. Usage: bash benchmarks/gpu_final_check.sh OUTDIR
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh /tmp > /tmp/setup.log 2>&1
cp /tmp/gpu.txt "$DIR/" 2>/dev/null
Q="tests/layers/quantization -k cuda -q -p no:cacheprovider -rf --tb=short"
run_q() {  # NAME CAP PYTHON-PRELUDE
    echo "== $1"
    timeout "$2" python3 -c "$3
import sys, pytest
sys.exit(pytest.main('$Q'.split()))" > "$DIR/$1.log" 2>&1
    echo "exit $?"; grep -E "^FAILED|passed|failed" "$DIR/$1.log" | tail -14
}
run_q quant 100 "pass"
run_q quant_nogemv 100 "import sglang_cuda.kernels.gemm_fp8 as f, sglang_triton.gemm_int4 as g
f.USE_GEMV = False; g.USE_GEMV = False"
run_q quant_triton_only 100 "import sglang_cuda.kernels.gemm_fp8 as f, sglang_triton.gemm_int4 as g
f.USE_GEMV = False; g.USE_GEMV = False; f._disabled.update({'per_tensor', 'per_channel', 'block'})"
echo "== gpt-oss-20b"
timeout 70 python3 benchmarks/bench_moe.py --device cuda --config benchmarks/configs/gpt-oss-20b \
    --only a --out "$DIR/moe.jsonl" > "$DIR/gptoss.log" 2>&1
echo "exit $?"; grep -E "^== |Error" "$DIR/gptoss.log" | tail -5
echo "== parity"
timeout 120 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/cuda/test_gpt_oss_model.py \
    tests/engine/test_gpt_oss.py tests/engine/test_parity.py \
    -k "cuda and (gpt-oss or gpt_oss or deepseek-v2-lite or qwen3-moe or mixtral)" > "$DIR/parity.log" 2>&1
echo "exit $?"; grep -E "^FAILED|passed|failed" "$DIR/parity.log" | tail -12
