"""Programmatic dependent launch (PDL) for the decode path's kernels, on NVIDIA Hopper and later.

At batch 1 a decode step is hundreds of short kernels in a row, and between a small kernel (a
norm, an activation, the attention merge) and the weight-streaming GEMV after it the memory
bus idles: the GEMV's programs are scheduled only once the small kernel has finished, and its
weight stream then takes a while to ramp up. With PDL a kernel launched with `launch_pdl=True`
may start while the kernel before it still runs:

- The small kernels call `release_dependents` first thing (griddepcontrol.launch_dependents):
  the next kernel may be scheduled on the SMs they leave idle.
- A GEMV launched early asks L2 for the start of its own weight slice
  (cp.async.bulk.prefetch.L2: weights never change during a step, so reading them early is
  safe), then calls `wait_for_inputs` (griddepcontrol.wait) before it reads x or writes
  anything: that returns only when the kernel before it has completed and its writes are
  visible, so every later access sees exactly what a plain launch would.

Rule for a kernel launched with PDL: before `wait_for_inputs`, nothing but loads of weights
(tensors no kernel of the step writes); no stores, no atomics, no reads of activations, cache
or index tensors. Kernels launched without PDL (torch's, and ours when it is off) serialise as
before; `release_dependents` is a no-op for them.

`PDL_LAUNCH["enabled"]` switches it (on where the device supports it: compute capability 9.0
and up, CUDA, not Triton's interpreter); "prefetch" caps the bytes a GEMV program asks L2 for
(0: none).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from sglang_triton.common import INTERPRET

PDL_LAUNCH = {"enabled": True, "prefetch": 32 << 10}


@functools.cache
def _supported(index: int) -> bool:
    if INTERPRET or torch.version.hip is not None or torch.version.cuda is None:
        return False
    if triton.runtime.driver.active.get_current_target().backend != "cuda":
        return False
    return torch.cuda.get_device_capability(index)[0] >= 9


def enabled(device: torch.device) -> bool:
    """Whether kernels on `device` launch with PDL (the switch is on and the GPU can)."""
    if not PDL_LAUNCH["enabled"] or device.type != "cuda" or torch.compiler.is_compiling():
        return False  # (torch.compile traces the kernels as its own: launched plainly)
    return _supported(device.index if device.index is not None else torch.cuda.current_device())


def launch(device: torch.device) -> dict:
    """Launch keywords for a kernel that follows the rule above: {"launch_pdl": True} or {}."""
    return {"launch_pdl": True} if enabled(device) else {}


def lines_for(device: torch.device, rows: int, row_bytes: int, *weights: torch.Tensor) -> int:
    """LINES for prefetch_rows: 128-byte lines a row, a power of two, so that a program's
    ROWS rows ask for at most PDL_LAUNCH["prefetch"] bytes and no line past a row's
    `row_bytes`; 0 (no prefetch) with PDL off or a weight not 16-byte aligned."""
    if not enabled(device) or any(w.data_ptr() % 16 for w in weights):
        return 0
    lines = min(int(PDL_LAUNCH["prefetch"]) // (rows * 128), -(-row_bytes // 128))
    return 1 << (lines.bit_length() - 1) if lines > 0 else 0


@triton.jit
def wait_for_inputs(PDL: tl.constexpr):
    """griddepcontrol.wait: the kernel before this one has completed, its writes visible."""
    if PDL:
        tl.extra.cuda.gdc_wait()


@triton.jit
def release_dependents(PDL: tl.constexpr):
    """griddepcontrol.launch_dependents: the next kernel, launched with PDL, may start."""
    if PDL:
        tl.extra.cuda.gdc_launch_dependents()


@triton.jit
def prefetch_lines(ptrs):
    """Ask L2 for the 128-byte line holding each address of `ptrs` (any tensor of pointers:
    one prefetch.global.L2 per element, spread over the program's threads; nothing waits)."""
    tl.inline_asm_elementwise(
        "prefetch.global.L2 [$1]; mov.u32 $0, 0;",
        "=r,l",
        [ptrs],
        dtype=tl.int32,
        is_pure=False,
        pack=1,
    )


@triton.jit
def prefetch_rows(first, stride, rows, k_bytes, ROWS: tl.constexpr, LINES: tl.constexpr):
    """The first LINES 128-byte lines (those below k_bytes) of each of the first `rows` of ROWS
    rows, row r at first + r * stride (pointer arithmetic in the matrix's elements): a
    program's weight slice, or its start."""
    if LINES > 0:
        per_line: tl.constexpr = 128 // (first.dtype.element_ty.primitive_bitwidth // 8)
        r = tl.arange(0, ROWS)[:, None]
        c = tl.arange(0, LINES)[None, :] * 128
        ok = (r < rows) & (c < k_bytes)
        ptrs = first + r * stride + c // 128 * per_line
        prefetch_lines(tl.where(ok, ptrs, first))


@triton.jit
def enter(PDL: tl.constexpr):
    """A PDL kernel's start: let the next kernel launch, then wait for the previous one."""
    release_dependents(PDL)
    wait_for_inputs(PDL)
