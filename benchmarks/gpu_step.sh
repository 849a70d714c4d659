# Sourced by the GPU scripts: `step NAME SECONDS COMMAND...` runs COMMAND capped at SECONDS,
# logs it to $DIR/NAME.log and prints the log's lines matching $KEEP (the script's own pattern;
# progress bars and INFO lines dropped), its exit status and its time.
QUIET='it/s\]| INFO '
KEEP=${KEEP:-'^== |passed|failed|FAILED|Error'}
step() {
    local name=$1 cap=$2 t0=$SECONDS
    shift 2
    echo "== $name (cap ${cap}s)"
    timeout "$cap" "$@" > "$DIR/$name.log" 2>&1
    local rc=$?
    grep -Ev "$QUIET" "$DIR/$name.log" | grep -E "$KEEP" | tail -20
    echo "== $name: exit $rc, $((SECONDS - t0)) s"
}
