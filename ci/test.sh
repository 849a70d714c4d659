#!/usr/bin/env bash
# The README's test command, as CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
ruff check .  # under a second
ruff format --check .  # the tree as `ruff format` writes it
sglang backends
# The example vendor backend is not installed (ci/install.sh): its tests and conformance run
# from a copy built beside the venv, on PYTHONPATH for pytest alone; its absence then fails.
example_dir="$(mktemp -d)"
trap 'rm -rf "$example_dir"' EXIT
if ! python -c 'import importlib.metadata as m; m.version("sglang-acme")' 2>/dev/null; then
  python -m pip install -q --no-deps --no-build-isolation --target "$example_dir" \
    ./examples/vendor-backend
fi
# Two workers (pytest-xdist), a file each at a time, the longest files first (tests/conftest.py,
# which also gives each worker one torch thread): most of the suite is single-threaded
# (Triton's interpreter, Python): on the 2-core VM, 29-32 minutes of pytest in one process,
# 16.6 in two (a clean clone at b6be75e, 2026-12-06: 4,958 passed; the whole run 20.6 minutes).
PYTHONPATH="$example_dir${PYTHONPATH:+:$PYTHONPATH}" SGLANG_REQUIRE_EXAMPLE_BACKEND=1 \
  python -m pytest -q --durations=25 -n 2 --dist loadfile --no-loadscope-reorder
