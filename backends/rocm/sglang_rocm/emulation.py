"""The rocm backend's emulation mode: its Triton kernels in Triton's interpreter on the CPU.

`SGLANG_ROCM_EMULATE=gfx942` (or another architecture of arch.CHIPS) makes the backend
available on a machine without an AMD GPU: the probe says so and marks itself `explicit_only`,
so `--device auto` never picks it (`--device rocm` and `sglang conformance --backend rocm`
do); kernels are registered with that architecture's launch tables and capabilities, and run
on CPU tensors through the interpreter (TRITON_INTERPRET=1, which triton reads when a kernel is
decorated, so it is set here before the shared kernel modules are imported). What it checks:
the kernels' indexing, masking and arithmetic with the block sizes rocm launches them with.
What it cannot check: wavefront scheduling, LDS limits, num_stages, the HIP compiler, aiter.
"""

from __future__ import annotations

import os
import sys

ENV = "SGLANG_ROCM_EMULATE"


def emulated_arch() -> str | None:
    value = os.environ.get(ENV, "").strip()
    return value or None


def enter() -> str | None:
    """Switch this process to the interpreter; None, or why it cannot be (kernels compiled for
    a GPU are already loaded, as when the cuda backend registered them first)."""
    loaded = sys.modules.get("sglang_triton.common")
    if loaded is not None and not getattr(loaded, "INTERPRET", False):
        return "the shared Triton kernels were already loaded for a GPU in this process"
    os.environ["TRITON_INTERPRET"] = "1"
    return None
