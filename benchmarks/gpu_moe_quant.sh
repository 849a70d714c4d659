#!/usr/bin/env bash
# One GPU call for issue 15's quantized experts kept quantized (moe:fp8_block, moe:mxfp4,
# moe:int4 on cuda's Triton kernels), each step capped (kernels 170 s: the 4-bit launches compile on first use):
#   1. the kernels on the device: the spec's FP8-block, MXFP4 and int4 cases on the
#      aligned-block and decode paths, and the model tests (Qwen3-MoE / DeepSeek-V3 FP8, Qwen3-MoE
#      GPTQ / AWQ / pack-quantized / act-order, gpt-oss MXFP4, the dense FP8 formats) on cuda;
#   2. Qwen3-30B-A3B batch-1 ITL: bf16 experts against FP8 blocks kept (Qwen3-30B-A3B-FP8's
#      config: every linear and the experts in 128x128 blocks) and int4 kept
#      (Qwen3-30B-A3B-GPTQ-Int4's config: GPTQ 4-bit, groups of 128, no act-order);
#   3. gpt-oss-20b batch-1 ITL: MXFP4 kept (GPT_OSS_BF16=1: the bf16 config too);
# Qwen3 bf16 and gpt-oss MXFP4 with a profile of four batch-1 decode steps. Logs in OUTDIR.tgz.
# The startup log says how the experts are held ("mlp.experts = ... (kept)") and the pool size.
# Usage: [STEPS="kernels models qwen3-bf16 ..."] bash benchmarks/gpu_moe_quant.sh OUTDIR.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
KEEP='^\{|^== |passed|failed|FAILED|Error|mlp.experts'
source benchmarks/gpu_step.sh
if [ -n "${STEPS:-}" ]; then  # STEPS="kernels models ...": only these steps
    eval "_all_$(declare -f step)"
    step() { [[ " $STEPS " == *" $1 "* ]] && _all_step "$@"; return 0; }
fi
PYT="python3 -m pytest -q -p no:cacheprovider"
CFG=benchmarks/configs
MOE="python3 benchmarks/bench_moe.py --device cuda --out $DIR/moe.jsonl --only a"
step kernels 170 $PYT tests/cuda/test_moe_triton.py tests/cuda/test_moe_decode_triton.py \
    -k "fp8 or mxfp4 or int4 or prefill or 128"
step models 150 $PYT tests/layers/quantization/test_moe_experts.py tests/engine/test_gpt_oss.py \
    tests/layers/quantization/test_fp8.py -k "cuda"
PROF="--profile-batch 1"  # the top kernels of four batch-1 decode steps, in NAME-profile-bs1.txt
step qwen3-bf16 80 $MOE --config $CFG/qwen3-30b-a3b $PROF --out "$DIR/qwen3-bf16.jsonl"
step qwen3-fp8-kept 65 $MOE --config $CFG/qwen3-30b-a3b-fp8 --keep-quantization
step qwen3-gptq-kept 70 $MOE --config $CFG/qwen3-30b-a3b-gptq-int4 --keep-quantization
[ -n "${GPT_OSS_BF16:-}" ] && step gpt-oss-bf16 60 $MOE --config $CFG/gpt-oss-20b
step gpt-oss-mxfp4-kept 75 $MOE --config $CFG/gpt-oss-20b --keep-quantization $PROF \
    --out "$DIR/gpt-oss-mxfp4.jsonl"
grep -ho "mlp.experts = [^,]*" "$DIR"/qwen3-*.log "$DIR"/gpt-oss-*.log | sort -u
tar czf "$DIR.tgz" -C "$(dirname "$DIR")" "$(basename "$DIR")" && rm -rf "$DIR"
