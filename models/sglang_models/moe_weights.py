"""Loading per-expert checkpoint matrices into a FusedMoE's stacked weights."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import torch
from sglang.layers.moe import FusedMoE
from sglang.layers.quantization.experts import ExpertLoader
from torch import nn

# "<prefix>.experts.<id>.<proj>.<kind>", <prefix>.experts being a FusedMoE; kind "weight", or a
# quantized format's tensors (qweight, weight_scale_inv, ...).
EXPERT = re.compile(r"^(?P<module>.*\.experts)\.(?P<id>\d+)\.(?P<proj>\w+)\.(?P<kind>\w+)$")
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
    # A quantized checkpoint's experts go through the format's method (quantization.experts).
    config = getattr(model, "quant_config", None)
    quantized = ExpertLoader(config, torch.float32) if config is not None else None

    def others():
        for name, tensor in weights:
            m = EXPERT.match(name)
            module = modules.get(m["module"]) if m else None
            if not isinstance(module, FusedMoE) or m["proj"] not in SHARDS:
                yield name, tensor
                continue
            expert, shard = int(m["id"]), SHARDS[m["proj"]]
            if not module.holds(expert):  # another expert-parallel rank's
                local = "w2_weight" if shard == "down" else "w13_weight"
            elif quantized is None and m["kind"] == "weight":
                local = module.load_expert(expert, shard, tensor)
            elif quantized is None:
                raise ValueError(
                    f"{name}: a quantized expert tensor, but the model is served "
                    "unquantized (its config.json has no quantization_config)"
                )
            else:
                shape = module.expert_shape(shard)  # the whole matrix; load_expert slices it
                local = "w2_weight" if shard == "down" else "w13_weight"
                store = lambda dense, module=module, e=expert, s=shard: module.load_expert(  # noqa: E731
                    e, s, dense.to(module.w13_weight.dtype)
                )
                quantized.add(name.rpartition(".")[0], m["kind"], tensor, shape, store)
            loaded.add(f"{m['module']}.{local}")

    filled = load_rest(others()) | loaded
    if quantized is not None:
        quantized.finish()
    return filled
