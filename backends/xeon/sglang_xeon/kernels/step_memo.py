"""What a kernel derives from per-step batch tensors alone, computed once per forward pass.

Every layer of a step calls attention.decode with the same kv_indptr / kv_indices and rope with
the same positions, so the gather slots, masks and cos/sin rows derived from them are built by
the first layer and reused by the other layers, rather than rebuilt by each.

The derived value is a pure function of the sources' contents, so the memo keys on contents:
it keeps a private copy of the sources it was built from and reuses the value only when a new
call's sources are equal to that copy (same shape, dtype, device and elements). Identity or
version counters would not do: inference tensors have no version counter, and a runner that
refills one persistent index buffer step after step must not get the last step's plan. The
check is one torch.equal per source per layer (a few microseconds for a decode batch's indices),
far less than rebuilding. Large tables that never change (a rope cos/sin cache) go in
`constants` instead: compared by identity and held by the entry, so their id cannot be reused
while it lives. One entry per memo: the next step's batch replaces it. Calls must not
overlap (one forward at a time per process, as the model runner does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)


class StepMemo:
    def __init__(self) -> None:
        self._extra: tuple | None = None
        self._sources: tuple[torch.Tensor, ...] = ()
        self._constants: tuple[torch.Tensor, ...] = ()
        self._value: Any = None

    def get(
        self,
        sources: tuple[torch.Tensor, ...],
        extra: tuple,
        build: Callable[[], Any],
        constants: tuple[torch.Tensor, ...] = (),
    ):
        hit = (
            extra == self._extra
            and len(constants) == len(self._constants)
            and all(a is b for a, b in zip(constants, self._constants))
            and len(sources) == len(self._sources)
            and all(_same(s, c) for s, c in zip(sources, self._sources))
        )
        if not hit:
            self._extra, self._sources, self._constants, self._value = None, (), (), None
            value = build()
            self._sources = tuple(s.clone() for s in sources)
            self._extra, self._constants, self._value = extra, constants, value
        return self._value
