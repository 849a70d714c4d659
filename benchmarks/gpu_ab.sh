#!/usr/bin/env bash
# A kernel change against its base in one device call: the batch-1 decode step (the engine's
# graph replayed at context 256, benchmarks/sweep_decode_launch.py with the defaults only) and
# the scheduler loop's ITL for each preset, with the working tree's packages (B) and with the
# base's copies of the changed files laid over them (A), in the order B A B so that drift shows.
# Prepare the base here (carried with the call): bash benchmarks/gpu_ab.sh --prepare REV FILE...
#   (writes .gpu/base/FILE as of REV, or as of R for an argument R:FILE; .gpu is git-ignored,
#   carry [".wheels", ".gpu"]).
# On the device: [PRESETS="llama8b-awq qwen3"] [RUNS="B1 A B2"] bash benchmarks/gpu_ab.sh OUTDIR
# (a run named A* has the base's files, any other the tree's). Logs in OUTDIR.tgz;
# OUTDIR/ab.txt lists each run's step and ITL.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--prepare" ]; then
    rev=$2; shift 2
    rm -rf .gpu/base && mkdir -p .gpu/base
    for f in "$@"; do
        r=$rev
        if [[ "$f" == *:* ]]; then r=${f%%:*}; f=${f#*:}; fi
        mkdir -p ".gpu/base/$(dirname "$f")" && git show "$r:$f" > ".gpu/base/$f"
    done
    echo "$rev" > .gpu/base/REV
    find .gpu/base -type f | sort
    exit 0
fi
DIR=$1; PRESETS=${PRESETS:-llama8b-awq qwen3}
mkdir -p "$DIR"
source benchmarks/gpu_setup.sh "$DIR" > "$DIR/setup.log" 2>&1
KEEP='^== |defaults|failed|Error'
source benchmarks/gpu_step.sh
site_path() {  # repo path -> its installed copy under /tmp/site (packages installed there)
    local f=$1
    case "$f" in
        backends/*/*) echo "/tmp/site/${f#backends/*/}" ;;
        core/*) echo "/tmp/site/${f#core/}" ;;
        models/*) echo "/tmp/site/${f#models/}" ;;
    esac
}
FILES=$(cd .gpu/base && find . -name '*.py' | sed 's|^\./||')
swap() {  # $1 = base | tree: lay those copies of the changed files over the installed ones
    for f in $FILES; do
        if [ "$1" = base ]; then cp ".gpu/base/$f" "$(site_path "$f")"; else cp "$f" "$(site_path "$f")"; fi
    done
}
echo "base $(cat .gpu/base/REV): $FILES" | tee "$DIR/ab.txt"
for run in ${RUNS:-B1 A B2}; do
    if [[ "$run" == A* ]]; then swap base; else swap tree; fi
    for preset in $PRESETS; do
        step "$run-$preset" 200 python3 benchmarks/sweep_decode_launch.py --preset "$preset" \
            --device cuda --budget-s 1 --itl --out "$DIR/$run-$preset.jsonl" \
            --best "$DIR/$run-best-$preset.json" --profile "$DIR/$run-profile-$preset"
        grep -h '^== sweep' "$DIR/$run-$preset.log" | sed "s/^/$run $preset /" >> "$DIR/ab.txt"
    done
done
swap tree
tar czf "$DIR.tgz" -C "$(dirname "$DIR")" "$(basename "$DIR")" && rm -rf "$DIR"
