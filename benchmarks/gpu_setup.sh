# Sourced by the GPU scripts (benchmarks/gpu_*.sh) on the lent machine: installs the carried
# wheels (.wheels: what the machine's Python lacks) and the repo's packages into /tmp/site
# (nothing is written into the image's own site-packages: on 2026-12-05 the image answered
# some of its own modules with "source code string cannot contain null bytes" after an
# editable install had written there; SGLANG_GPU_EDITABLE=1 installs in editable mode as
# before), and records the GPU and the commit in $1/gpu.txt.
export PYTHONUNBUFFERED=1
# no bytecode written in the call: on 2026-12-05 the image answered imports that a previous
# process of the same call had made with "source code string cannot contain null bytes"
export PYTHONDONTWRITEBYTECODE=1
if [ -z "${SGLANG_GPU_SETUP_DONE:-}" ]; then  # once per call, when several scripts source this
    python3 -m pip install -q --no-compile --no-index --no-deps --target /tmp/site .wheels/*.whl 2>&1 | tail -2
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
    if [ -n "${SGLANG_GPU_EDITABLE:-}" ]; then
        python3 -m pip install -q --no-index --no-deps --no-build-isolation -e core -e models \
            -e backends/triton -e backends/cuda 2>&1 | tail -2
    else
        python3 -m pip install -q --no-compile --no-index --no-deps --no-build-isolation --target /tmp/site \
            ./core ./models ./backends/triton ./backends/cuda 2>&1 | tail -2
    fi
    export SGLANG_GPU_SETUP_DONE=1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$1/gpu.txt"
git log -1 --format=%H 2>/dev/null | tee -a "$1/gpu.txt"
