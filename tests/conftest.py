"""Session-wide test setup that must happen before any test module is imported.

Triton reads TRITON_INTERPRET when a kernel is decorated, i.e. when a backend's kernel module
is imported, and the first import can come from anywhere in the session (discovery registers
every installed backend's kernels, so the conformance tests import the cuda kernels long
before tests/cuda runs). On a machine without a GPU the cuda kernels can only run in Triton's
interpreter, so it is switched on here, once, before collection starts."""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
