"""Programmatic dependent launch (PDL) for the decode path's kernels, on NVIDIA Hopper and later.

At batch 1 a decode step is hundreds of short kernels in a row (a Llama-8B layer: norm, GEMV,
rope, KV store, attention, merge, GEMV, norm, GEMV, activation, GEMV), and each waits for the
one before it to finish before its programs are even scheduled. With PDL a kernel launched with
`launch_pdl=True` is scheduled while the kernel before it still runs, and its programs sit at
griddepcontrol.wait, ready, until that kernel has completed and its writes are visible:

- Small kernels (norm, activation, rope, KV store, attention, routing, activation quantization)
  call `enter`: they release their dependents first thing (griddepcontrol.launch_dependents),
  then wait. A run of small kernels is thus resident at once, each starting the moment its
  predecessor ends. Rope and decode attention release, then read what the rule below allows
  (positions, cache slots, the cos/sin table, norm weights; the KV extent and the first block's
  slots), then wait: those loads' latency overlaps the kernel before.
- Weight-streaming kernels (the GEMVs, the MoE decode GEMVs) wait first and release their
  dependents only after their main loop: the small kernels after them start during their tail.

Rule for a kernel launched with PDL: before `wait_for_inputs`, no stores, no atomics, and no
loads of anything a kernel of the step writes; only the weights and the step's inputs (the
ForwardBatch's positions, out_cache_loc, kv_indptr, kv_indices), which are written before the
forward's first kernel starts (copied into a graph's static buffers before its replay; built
by torch's kernels, which release nothing early, in an eager forward). Kernels launched without
PDL (torch's, and ours when it is off) serialise as before, and griddepcontrol is a no-op for
them.

Measured on the H200 (batch-1 ITL, scheduler loop; docs/benchmarks.md): Llama-3.1-8B bf16
4.53 -> 4.33 ms, FP8 block 3.23 -> 2.96, AWQ 2.92 -> 2.76, Qwen3-30B-A3B 3.30 -> 2.92. Two
things that lost and are not here: GEMVs releasing at their start (the next GEMV's early
programs then compete with the running one: FP8 3.27, Qwen3 3.42), and GEMVs asking L2 for
their weight slice before the wait (cp.async.bulk / prefetch.global.L2; 32 KiB a program:
FP8 3.04, AWQ 2.84, Qwen3 3.02; 128 KiB: FP8 3.38).

`PDL_LAUNCH["enabled"]` switches it; it applies where the device supports it (compute
capability 9.0 and up, CUDA, not Triton's interpreter, not while torch.compile traces).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from sglang_triton.common import INTERPRET

PDL_LAUNCH = {"enabled": True}


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


def args(device: torch.device) -> dict:
    """Keywords for launching a kernel that keeps the rule above: its PDL constexpr, and
    Triton's launch_pdl option when PDL is on."""
    return {"PDL": True, "launch_pdl": True} if enabled(device) else {"PDL": False}


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
def enter(PDL: tl.constexpr):
    """A PDL kernel's start: let the next kernel launch, then wait for the previous one."""
    release_dependents(PDL)
    wait_for_inputs(PDL)
