#!/usr/bin/env bash
# Upstream SGLang's client side (its frontend language and `python -m sglang.bench_serving`) in
# a venv of its own, ./.venv-upstream, since the package name `sglang` is ours too.
# tests/server/test_upstream_client.py runs it against our server. CPU wheels only; built once
# (a stamp holds this script's hash), about 2-3 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${UPSTREAM_VENV:-.venv-upstream}
STAMP="$VENV/.built-by-$(sha256sum ci/install_upstream_client.sh | cut -c1-16)"
if [ -f "$STAMP" ]; then
  exit 0
fi
rm -rf "$VENV"
python3 -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
$PIP install -q torch==2.13.0     # the CPU build, as in install.sh (upstream pins a CUDA 2.14.1)
# Its client dependencies, found by running both clients: the frontend language needs the first
# line (IPython through sglang.utils); bench_serving imports sglang.srt modules that need the rest.
# torchvision: PyPI's wheel is a CUDA build whose ops cannot load beside the CPU torch; the tests
# declare the two ops it registers unguarded (see tests/server/upstream_client/prelude.py).
$PIP install -q orjson psutil pybase64 packaging pillow starlette msgspec pyzmq ipython \
  requests aiohttp numpy tqdm \
  transformers==5.24.0 datasets==5.2.0 triton==3.9.0 apache-tvm-ffi==0.1.15.post2 \
  sentencepiece==0.2.3 compressed-tensors==0.20.1 gguf==0.19.0 torchvision==0.28.0
# Last and without its requirements (it pins a CUDA torch 2.14.1 and transformers 5.19.0), so
# that pip has nothing to report about them.
$PIP install -q --no-deps sglang==0.5.23
"$VENV/bin/python" -c "import torch; assert torch.__version__.endswith('+cpu'), torch.__version__"
touch "$STAMP"
