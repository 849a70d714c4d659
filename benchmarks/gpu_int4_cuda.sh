#!/usr/bin/env bash
# The CUDA C++ int4 and FP8 GEMVs (sglang_cuda.kernels.gemv_*_cuda) on the GPU, and main's unverified
# GPU paths, in one call:
#   tests   its kernel tests (tests/cuda/test_gemv_int4_cuda.py) and int4 through the models
#   gemv    bench_decode_gemv.py --only int4: the Triton launches against the CUDA kernel's
#   graphs  decode graphs with PDL, rope.kv_store and the tiny Qwen3 against transformers
#   itl     batch-1 ITL: AWQ and FP8 block with the CUDA kernels and with Triton's, AWQ with the
#           cp.async pipeline, GPTQ
# Usage: [PARTS="tests gemv graphs itl"] [ITLS="awq awq_triton fp8 fp8_triton awq_s4 gptq"]
#   bash benchmarks/gpu_int4_cuda.sh OUTDIR. Carry .wheels. The logs end up in OUTDIR.tgz (a
#   call returns a limited number of files).
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; PARTS=${PARTS:-tests gemv graphs itl}
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
source benchmarks/gpu_step.sh
KEEP='^== |passed|failed|FAILED|Error|error|ITL|best|total|cuda'
PYTEST="python3 -m pytest -q -p no:cacheprovider -rf --tb=short"
T='"table": "GEMV_INT4_CUDA_LAUNCH"'; MOD='"module": "sglang_cuda.kernels.gemv_int4_cuda"'
echo "{\"int4-cuda\": {$MOD, $T, \"launch\": {\"enabled\": true}}}" > "$DIR/cuda_on.json"
echo "{\"int4-cuda\": {$MOD, $T, \"launch\": {\"enabled\": false}}}" > "$DIR/cuda_off.json"
echo "{\"int4-cuda\": {$MOD, $T, \"launch\": {\"enabled\": true, \"stages\": 4}}}" > "$DIR/cuda_s4.json"
echo '{"fp8-cuda": {"module": "sglang_cuda.kernels.gemv_fp8_cuda", "table": "GEMV_FP8_CUDA_LAUNCH", "launch": {"enabled": true}}}' > "$DIR/fp8_on.json"
for part in $PARTS; do
    case $part in
        tests)
            step tests 150 $PYTEST tests/cuda/test_gemv_int4_cuda.py tests/cuda/test_gemv_fp8_cuda.py \
                tests/cuda/test_gemv_int4_triton.py tests/layers/quantization/test_awq_gptq.py \
                tests/layers/quantization/test_compressed_tensors.py -k "cuda or triton or gemv" ;;
        gemv)
            step gemv 200 python3 benchmarks/bench_decode_gemv.py --only ${GEMVS:-int4,fp8} --out "$DIR/gemv.jsonl" ;;
        graphs)
            step graphs 240 $PYTEST tests/model_executor/test_graph_runner.py tests/cuda/test_pdl.py \
                tests/cuda/test_rope_triton.py tests/cuda/test_qwen3_model.py ;;
        itl)  # int4: the CUDA kernel is the default; awq_triton turns it off; FP8: on by override
            run_itl() {  # NAME QUANT [OVERRIDES]
                step "itl_$1" 150 python3 benchmarks/bench_cuda_llama8b.py --device cuda \
                    --quant "$2" --only a ${3:+--launch-overrides "$DIR/$3"} --out "$DIR/itl.jsonl"
            }
            for run in ${ITLS:-awq awq_triton fp8 fp8_triton awq_s4 gptq}; do
                case $run in
                    awq) run_itl awq awq cuda_on.json ;;
                    awq_triton) run_itl awq_triton awq cuda_off.json ;;
                    fp8) run_itl fp8 fp8-block fp8_on.json ;;
                    fp8_triton) run_itl fp8_triton fp8-block ;;
                    awq_s4) run_itl awq_s4 awq cuda_s4.json ;;
                    gptq) run_itl gptq gptq cuda_on.json ;;
                esac
            done ;;
    esac
done
tar czf "$DIR.tgz" -C "$(dirname "$DIR")" "$(basename "$DIR")" && rm -rf "$DIR"
