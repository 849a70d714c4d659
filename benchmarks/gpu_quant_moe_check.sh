#!/usr/bin/env bash
# One GPU call for issues 14 and 15 (under 570 s, each step capped):
#   1. gemm.fp8 128x128 blocks at 16-8192 rows: Triton scaled GEMM vs torch._scaled_mm's
#      block-wise path vs bfloat16 cuBLAS (benchmarks/bench_fp8_gemm.py);
#   2. Llama-3.1-8B FP8 block-wise: batch-1 ITL and offline 256 x 1024/256 (bf16's figure of
#      the same session: gpu_decode_tune2.sh);
#   3. the quantized-checkpoint tests on cuda (tests/layers/quantization -k cuda) and the fp8
#      kernel tests on the GPU;
#   4. MoE / MLA / gpt-oss greedy parity with transformers on cuda, gpt-oss through cuda's
#      Triton kernels;
#   5. DeepSeek-V2-Lite config: batch-1 ITL, offline 64 prompts, KV bytes per token;
#   6. gpt-oss-20b config: batch-1 ITL.
# Usage: bash benchmarks/gpu_quant_moe_check.sh OUTDIR.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
KEEP='^\{|^== |passed|failed|FAILED|Error'
source benchmarks/gpu_step.sh
PYT="python3 -m pytest -q -p no:cacheprovider"
CFG=benchmarks/configs
MOE="python3 benchmarks/bench_moe.py --device cuda --out $DIR/moe.jsonl"
step fp8gemm 60 python3 benchmarks/bench_fp8_gemm.py --rows 16 256 2048 8192 --out "$DIR/fp8gemm.jsonl"
step fp8-block 90 python3 benchmarks/bench_cuda_llama8b.py --device cuda --out "$DIR/fp8.jsonl" \
    --quant fp8-block --only ac
step fp8tests 60 $PYT tests/cuda/test_gemm_fp8_triton.py tests/cuda/test_gemv_fp8_triton.py
step quanttests 100 $PYT tests/layers/quantization -k cuda
step parity 110 $PYT tests/engine/test_parity.py tests/engine/test_gpt_oss.py \
    tests/cuda/test_gpt_oss_model.py \
    -k "cuda and (mistral-swa or mixtral or moe or deepseek or gpt-oss or gpt_oss)"
step deepseek-v2-lite 90 $MOE --config $CFG/deepseek-v2-lite --only ac --random-prompts 64
step gpt-oss-20b 70 $MOE --config $CFG/gpt-oss-20b --only a
grep -h "kv_bytes_per_token" "$DIR/deepseek-v2-lite.log" | head -2
