#!/usr/bin/env bash
# The README's test command, as CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
sglang backends
python -m pytest -q
