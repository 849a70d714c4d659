"""The tpu backend's CPU mode: its JAX/Pallas kernels on JAX's CPU platform, Pallas in interpret
mode (`SGLANG_TPU_EMULATE=1`). Available without a TPU device, marked `explicit_only` so
`--device auto` never picks it; `--device tpu` and `sglang conformance --backend tpu` do. It
checks the kernels' arithmetic, masking and indexing exactly as written; not Mosaic's lowering,
TPU tiling limits or the host-to-TPU transfers.
"""

from __future__ import annotations

import os

ENV = "SGLANG_TPU_EMULATE"


def emulated() -> bool:
    return os.environ.get(ENV, "0").strip() not in ("", "0")


def enter() -> None:
    """JAX on its CPU platform (read when JAX first initialises a backend)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
