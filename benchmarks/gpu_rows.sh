#!/usr/bin/env bash
# gemm.dense at 1-16 rows on the tensor cores (gemv.rows, off by default) on the GPU, one call:
#   tests   the kernel against the spec's reference (tests/cuda/test_gemm_triton.py -k rows)
#   bench   bench_decode_gemv.py --only rows: cuBLAS against the rows kernel's launches at
#           1, 2, 4, 8 and 16 rows over Llama-3.1-8B's linears (and the FMA GEMV at one row)
#   ttft    in-process prefill of 16 tokens (the TTFT16 of issue 20, host included) and
#           batch-1 ITL with the rows kernel off (main) and on (ROWS_ON overrides, default
#           {"enabled": true})
# Usage: [PARTS="tests bench ttft"] [ROWS_M=1,16] [ROWS_ON='{...}'] bash benchmarks/gpu_rows.sh OUTDIR.
# Carry .wheels. Logs in OUTDIR.tgz.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; PARTS=${PARTS:-tests bench ttft}
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
KEEP='^== |passed|failed|FAILED|Error|best|total|TTFT|ITL|prefill|launch override'
source benchmarks/gpu_step.sh
ON=${ROWS_ON:-'{"enabled": true}'}
echo "{\"rows\": {\"module\": \"sglang_triton.gemv\", \"table\": \"ROWS_LAUNCH\", \"launch\": $ON}}" \
    > "$DIR/rows_on.json"
for part in $PARTS; do
    case $part in
        tests)
            step tests 90 python3 -m pytest -q -p no:cacheprovider -rf --tb=short \
                tests/cuda/test_gemm_triton.py -k "rows or dense" ;;
        bench)
            step bench 220 python3 benchmarks/bench_decode_gemv.py --only rows ${ROWS_M:+--rows-m $ROWS_M} \
                --out "$DIR/rows.jsonl" ;;
        ttft)
            for mode in off on; do
                over=""; [ $mode = on ] && over="--launch-overrides $DIR/rows_on.json"
                step "ttft_$mode" 110 python3 benchmarks/bench_cuda_llama8b.py --device cuda \
                    --only pa --prefill-lengths 16 512 $over --out "$DIR/ttft.jsonl"
            done ;;
    esac
done
tar czf "$DIR.tgz" -C "$(dirname "$DIR")" "$(basename "$DIR")" && rm -rf "$DIR"
