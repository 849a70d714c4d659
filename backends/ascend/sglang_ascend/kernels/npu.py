"""torch_npu, imported on first use (the probe has already compared its pinned torch with the
installed one; importing it against another torch fails)."""

from __future__ import annotations

import functools
import importlib

import torch


@functools.cache
def npu():
    return importlib.import_module("torch_npu")


def half_only(config) -> str | None:
    """The fused operators take float16/bfloat16 (float32 falls back to the reference)."""
    dtype = config.get("dtype")
    if dtype is not None and dtype not in (torch.float16, torch.bfloat16):
        return f"the torch-npu operator takes float16/bfloat16, not {dtype}"
    return None


def register_npu(registry, op: str, fn, name: str, **options) -> None:
    registry.register(op, fn, name=f"ascend.{name}", **options)
