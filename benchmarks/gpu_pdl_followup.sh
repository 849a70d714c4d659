#!/usr/bin/env bash
# The H200 checks and timings left open when PDL went on by default (987defe) and greedy
# sampling's argmax became two passes (bf94930), in one call of ~25 min of device time:
#   graphs   decode through CUDA graphs with PDL against eager tokens, the PDL PTX rules, and
#            rope.kv_store (kernel and tiny Qwen3 against transformers) on the device
#   itl      batch-1 ITL at main's kernels: bf16, GPTQ, AWQ, FP8 block (Llama-3.1-8B), Qwen3-30B-A3B,
#            bf16 and Qwen3 again without rope.kv_store, and greedy argmax one pass against two
#            (sampler.greedy_argmax) at 1-64 rows
#   sweep    the decode launch tables re-timed under PDL (they were tuned before it), best picked
#   ncu      stall reasons of the int4 and FP8 tensor-core GEMVs at M = 1 (--clock-control none)
# Usage: [PARTS="graphs itl sweep ncu"] [QUANTS="none gptq awq fp8-block"] bash benchmarks/gpu_pdl_followup.sh OUTDIR
# Carry .wheels (benchmarks/gpu_setup.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; PARTS=${PARTS:-graphs itl sweep ncu}
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
source benchmarks/gpu_step.sh
KEEP='^== |passed|failed|FAILED|Error|ITL|us a layer|best|TB/s|stall|Stall|Issue'
for part in $PARTS; do
    case $part in
        graphs)
            step graphs 240 python3 -m pytest -q -p no:cacheprovider -rf --tb=short \
                tests/model_executor/test_graph_runner.py tests/cuda/test_pdl.py \
                tests/cuda/test_rope_triton.py tests/cuda/test_qwen3_model.py \
                tests/cuda/test_attention_triton.py tests/cuda/test_gemv_int4_triton.py ;;
        itl)
            step argmax 60 python3 -c "
import torch, triton.testing as tt
from sglang.sampling.sampler import greedy_argmax
for rows in (1, 8, 64):
    x = torch.randn(rows, 128256, device='cuda')
    one = tt.do_bench(lambda: x.argmax(-1)) * 1e3
    two = tt.do_bench(lambda: greedy_argmax(x)) * 1e3
    print(f'ITL-side argmax, {rows} rows of 128256: one pass {one:.1f} us, two passes {two:.1f} us')"
            for q in ${QUANTS:-none gptq awq fp8-block}; do
                step "itl_$q" 150 python3 benchmarks/bench_cuda_llama8b.py --device cuda \
                    --quant "$q" --only a --out "$DIR/itl.jsonl"
            done
            step itl_qwen3 200 python3 benchmarks/bench_moe.py --device cuda \
                --config benchmarks/configs/qwen3-30b-a3b --only a --out "$DIR/itl.jsonl"
            # the same two without rope.kv_store (rope and kv.store as two launches again)
            for bench in "bench_cuda_llama8b.py --quant none" \
                    "bench_moe.py --config benchmarks/configs/qwen3-30b-a3b"; do
                step "itl_nostore_${bench%%.py*}" 200 python3 -c "
import runpy, sys
import sglang_models.llama as llama
llama.LlamaAttention.fuse_kv_store = False
sys.path.insert(0, 'benchmarks')
sys.argv = ['bench'] + '$bench --device cuda --only a --out $DIR/itl_nostore.jsonl'.split()[1:]
runpy.run_path('benchmarks/' + '$bench'.split()[0], run_name='__main__')"
            done ;;
        sweep)
            step sweep_int4_fp8 300 python3 benchmarks/bench_decode_gemv.py --only int4,fp8 \
                --out "$DIR/sweep.jsonl" --pick-best "$DIR/best_int4_fp8.json"
            step sweep_qwen3 300 python3 benchmarks/bench_decode_gemv.py --only dense,moe \
                --dense-shapes qwen3,qwen3-head --moe-sweep --out "$DIR/sweep.jsonl" \
                --pick-best "$DIR/best_qwen3.json" ;;
        ncu)
            step ncu 240 ncu --clock-control none --target-processes all \
                --kernel-name regex:'_int4_mma_kernel|_fp8_block_mma_kernel' --launch-count 4 \
                --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis \
                python3 benchmarks/bench_decode_gemv.py --only int4,fp8 --out /dev/null ;;
    esac
done
