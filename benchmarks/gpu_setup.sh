# Sourced by the GPU scripts (benchmarks/gpu_*.sh) on the lent machine: installs the carried
# wheels (.wheels: what the machine's Python lacks, built by benchmarks/gpu_wheels.sh) and the
# repo's packages into /tmp/site
# (nothing written into the image's own site-packages; SGLANG_GPU_EDITABLE=1 installs them in
# editable mode there instead), and records the GPU and the commit in $1/gpu.txt.
export PYTHONUNBUFFERED=1
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
