#!/usr/bin/env bash
# The CUDA C++ int4 GEMV (sglang_cuda.kernels.gemv_int4_cuda) on the GPU, and main's unverified
# GPU paths, in one call:
#   tests   its kernel tests (tests/cuda/test_gemv_int4_cuda.py) and int4 through the models
#   gemv    bench_decode_gemv.py --only int4: the Triton launches against the CUDA kernel's
#   graphs  decode graphs with PDL, rope.kv_store and the tiny Qwen3 against transformers
#   itl     batch-1 ITL, AWQ and GPTQ (the CUDA kernel; then AWQ with its cp.async pipeline and
#           with the Triton kernel, by launch overrides)
# Usage: [PARTS="tests gemv graphs itl"] bash benchmarks/gpu_int4_cuda.sh OUTDIR. Carry .wheels.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; PARTS=${PARTS:-tests gemv graphs itl}
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
source benchmarks/gpu_step.sh
KEEP='^== |passed|failed|FAILED|Error|error|ITL|best|int4-awq|cuda'
PYTEST="python3 -m pytest -q -p no:cacheprovider -rf --tb=short"
echo '{"int4-cuda-s4": {"module": "sglang_cuda.kernels.gemv_int4_cuda", "table": "GEMV_INT4_CUDA_LAUNCH", "launch": {"stages": 4}}}' > "$DIR/cuda_s4.json"
echo '{"int4-cuda-off": {"module": "sglang_cuda.kernels.gemv_int4_cuda", "table": "GEMV_INT4_CUDA_LAUNCH", "launch": {"enabled": false}}}' > "$DIR/cuda_off.json"
for part in $PARTS; do
    case $part in
        tests)
            step tests 150 $PYTEST tests/cuda/test_gemv_int4_cuda.py \
                tests/cuda/test_gemv_int4_triton.py tests/layers/quantization/test_awq_gptq.py \
                tests/layers/quantization/test_compressed_tensors.py -k "cuda or triton or gemv" ;;
        gemv)
            step gemv 200 python3 benchmarks/bench_decode_gemv.py --only int4 --out "$DIR/gemv.jsonl" ;;
        graphs)
            step graphs 240 $PYTEST tests/model_executor/test_graph_runner.py tests/cuda/test_pdl.py \
                tests/cuda/test_rope_triton.py tests/cuda/test_qwen3_model.py ;;
        itl)
            for q in awq gptq; do
                step "itl_$q" 150 python3 benchmarks/bench_cuda_llama8b.py --device cuda \
                    --quant "$q" --only a --out "$DIR/itl.jsonl"
            done
            step itl_awq_s4 150 python3 benchmarks/bench_cuda_llama8b.py --device cuda \
                --quant awq --only a --launch-overrides "$DIR/cuda_s4.json" --out "$DIR/itl.jsonl"
            step itl_awq_triton 150 python3 benchmarks/bench_cuda_llama8b.py --device cuda \
                --quant awq --only a --launch-overrides "$DIR/cuda_off.json" --out "$DIR/itl.jsonl" ;;
    esac
done
