#!/usr/bin/env bash
# Diagnosis (one short GPU call): GPTQ checkpoints on cuda after the g_idx fix, and the FP8
# per-tensor model test with torch._scaled_mm's output compared call by call against the
# Triton scaled GEMM on the same quantized inputs (shapes, strides, largest difference).
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh /tmp > /tmp/setup.log 2>&1
timeout 60 python3 -m pytest -q -p no:cacheprovider -rf --tb=line tests/layers/quantization \
    -k "cuda and (gptq or awq)" > "$DIR/gptq.log" 2>&1
echo "gptq exit $?"; grep -E "^FAILED|passed|failed" "$DIR/gptq.log" | tail -8
timeout 60 python3 -c "
import sys, pytest, torch
import sglang_cuda.kernels.gemm_fp8 as f
from sglang_cuda.kernels.scaled_mm import scaled_mm
real = f._torch_scaled_mm
seen = []
def wrapped(xq, weight, xs, ws, out_dtype, scheme):
    out = real(xq, weight, xs, ws, out_dtype, scheme)
    ref = scaled_mm(xq, weight, xs.reshape(-1), ws.reshape(-1), out_dtype, None)
    if len(seen) < 12:
        d = ((out.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
        seen.append(1)
        print('DIAG', scheme, tuple(xq.shape), xq.stride(), tuple(weight.shape), weight.stride(), out_dtype, 'xs', tuple(xs.shape), 'ws', tuple(ws.shape), 'rel', d, flush=True)
    return out
f._torch_scaled_mm = wrapped
sys.exit(pytest.main(['tests/layers/quantization/test_fp8.py', '-k', 'cuda and per_tensor', '-q', '-p', 'no:cacheprovider', '--tb=no']))
" > "$DIR/diag.log" 2>&1
echo "diag exit $?"; grep -E "DIAG|passed|failed" "$DIR/diag.log" | head -16
