"""Loading per-expert checkpoint matrices into a FusedMoE's stacked weights."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import torch
from sglang.layers.moe import FusedMoE
from torch import nn

# "<prefix>.experts.<id>.<proj>.weight", <prefix>.experts being a FusedMoE.
EXPERT = re.compile(r"^(?P<module>.*\.experts)\.(?P<id>\d+)\.(?P<proj>\w+)\.weight$")
SHARDS = {
    "gate_proj": "gate",
    "up_proj": "up",
    "down_proj": "down",  # Qwen, DeepSeek
    "w1": "gate",
    "w3": "up",
    "w2": "down",  # Mixtral
}

Weights = Iterable[tuple[str, torch.Tensor]]


def load_with_experts(
    model: nn.Module, weights: Weights, load_rest: Callable[[Weights], set[str]]
) -> set[str]:
    """Copy the routed experts' matrices into their FusedMoE and hand every other tensor, in
    order, to `load_rest` (the dense model's loader). Returns the parameter names filled."""
    modules = dict(model.named_modules())
    loaded: set[str] = set()

    def others():
        for name, tensor in weights:
            m = EXPERT.match(name)
            module = modules.get(m["module"]) if m else None
            if not isinstance(module, FusedMoE) or m["proj"] not in SHARDS:
                yield name, tensor
                continue
            local = module.load_expert(int(m["id"]), SHARDS[m["proj"]], tensor)
            loaded.add(f"{m['module']}.{local}")

    return load_rest(others()) | loaded
