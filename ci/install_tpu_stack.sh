#!/usr/bin/env bash
# The tpu backend's stack (JAX, CPU wheels) in a venv of its own, ./.venv-tpu, layered over
# ./.venv: a .pth file puts .venv's site-packages (torch, sglang and its backends, transformers)
# behind the venv's own, so only jax and jaxlib are installed here and nothing in .venv
# changes. tests/tpu runs the tpu backend's conformance and a tiny Llama there on JAX's CPU
# platform. Built once (a stamp holds this script's hash); about 30 s with the wheels cached.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TPU_VENV:-.venv-tpu}
JAX_VERSION=0.10.2
STAMP="$VENV/.built-by-$(sha256sum ci/install_tpu_stack.sh | cut -c1-16)"
if [ -f "$STAMP" ]; then
  exit 0
fi
BASE_SITE="$(.venv/bin/python -c 'import site; print(site.getsitepackages()[0])')"
rm -rf "$VENV"
python3 -m venv "$VENV"
SITE="$("$VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')"
echo "import site; site.addsitedir('$(realpath "$BASE_SITE")')" > "$SITE/_sglang_base_venv.pth"
"$VENV/bin/python" -m pip install -q "jax==$JAX_VERSION" "jaxlib==$JAX_VERSION"
"$VENV/bin/python" -c "import jax, torch, sglang_tpu; assert jax.default_backend() == 'cpu'"
touch "$STAMP"
