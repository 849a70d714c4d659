#!/usr/bin/env bash
# Checks the cuda backend's non-attention kernels on a GPU, quickest signal first:
#   1. the Triton kernels' own tests (tests/cuda, run on the GPU when one is visible: compile
#      errors and wrong results show per kernel, with the case that failed);
#   2. the conformance suite for these ops (every spec case against the float64 oracle),
#      its JSON report written to $OUT (default /tmp/cuda-kernels.json).
# Usage: benchmarks/gpu_check_kernels.sh [report path]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-/tmp/cuda-kernels.json}"
OPS="norm.rms,act.silu_mul,act.gelu_mul,rope,kv.store,moe.route,moe.experts,gemm.dense"
OPS="$OPS,gemm.int8,gemm.fp8,gemm.int4,gemm.fp4,sampling.sample,grammar.apply_bitmask"
nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader || true
python -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
python -m pytest -q -x tests/cuda -k "not attention" -p no:cacheprovider
tests=$?
sglang conformance --backend cuda --ops "$OPS" --report "$OUT"
conf=$?
echo "tests/cuda exit $tests, conformance exit $conf, report $OUT"
exit $(( tests || conf ))
