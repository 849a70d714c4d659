#!/usr/bin/env bash
# Builds .wheels, the wheels the GPU machine's Python 3.12 lacks (it has torch, triton,
# transformers and their dependencies, and no package index), for benchmarks/gpu_setup.sh: the
# versions this checkout's .venv has, except llguidance (its newest CPython 3.12 wheel for the
# platforms ../shared/tools/offline-wheels names). Run here, once per checkout (~10 s):
#   bash benchmarks/gpu_wheels.sh [DEST]   (then carry .wheels in the device call)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.wheels}
TOOL=${OFFLINE_WHEELS:-../shared/tools/offline-wheels}
pkgs=(llguidance==1.6.1 distro)
for p in pluggy gguf pyzmq fastapi starlette uvicorn uvloop httptools pydantic pydantic_core \
    annotated-types typing-inspection prometheus_client xgrammar apache-tvm-ffi pytest iniconfig \
    execnet pytest-xdist h11 click anyio sniffio openai httpx httpcore jiter jsonschema \
    jsonschema-specifications referencing rpds-py attrs; do
    v=$(.venv/bin/python -m pip show "$p" 2>/dev/null | awk '/^Version:/{print $2}')
    pkgs+=("$p${v:+==$v}")
done
PATH="$PWD/.venv/bin:$PATH" bash "$TOOL" "$DEST" "${pkgs[@]}" 2>&1 | grep -v '^WARNING: Location'
