"""Loading per-expert checkpoint matrices into a FusedMoE's stacked weights."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import torch
from sglang.layers.moe import FusedMoE
from sglang.layers.quantization.base import QuantizationError
from sglang.layers.quantization.experts import ExpertLoader
from sglang.ops.quant.experts import int4_expert_from_gemm
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
    kept = KeptFp8Experts()
    kept_int4 = KeptInt4Experts()

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
            elif module.block_size is not None:  # FP8 blocks kept (FusedMoE.keep_fp8_blocks)
                local = kept.load(name, module, m["module"], expert, shard, m["kind"], tensor)
            elif module.int4_group is not None:  # int4 kept (FusedMoE.keep_int4)
                local = "w2_weight" if shard == "down" else "w13_weight"
                w = local.partition("_")[0]  # codes, scales and zeros arrive together
                loaded.update(f"{m['module']}.{w}_{part}" for part in ("scale", "zeros"))
                prefix = name.rpartition(".")[0]
                store = kept_int4.storer(prefix, module, m["module"], expert, shard, m["kind"])
                quantized.add(prefix, m["kind"], tensor, module.expert_shape(shard), store, True)
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
    kept.finish(modules, getattr(model, "optional_weights", ()))
    kept_int4.finish(modules, getattr(model, "optional_weights", ()))
    return filled


class KeptFp8Experts:
    """Loads FP8 block-scaled experts as they are (e4m3 codes and block scales) into the MoE
    layers that keep them, and names the first tensor a checkpoint lacks."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, int, str, str]] = set()
        self.proj_names: dict[tuple[str, str], str] = {}  # (module, shard) -> checkpoint name

    def load(self, name, module: FusedMoE, module_name, expert, shard, kind, tensor) -> str:
        if kind == "weight":
            if tensor.dtype != torch.float8_e4m3fn:
                raise QuantizationError(
                    f"{name}: dtype {tensor.dtype}, but the checkpoint's experts are FP8 "
                    "blocks (float8_e4m3fn)"
                )
            local = module.load_expert(expert, shard, tensor)
        elif kind == module.scale_name:
            local = module.load_expert_scale(expert, shard, tensor.float())
        else:
            raise QuantizationError(
                f"{name}: not a tensor of FP8 block-scaled experts (weight, {module.scale_name})"
            )
        self.seen.add((module_name, expert, shard, kind))
        self.proj_names[(module_name, shard)] = name.rsplit(".", 2)[-2]
        return local

    def finish(self, modules: dict, optional: tuple[str, ...] = ()) -> None:
        """Every expert tensor of every layer that keeps FP8 blocks was loaded; a layer under
        an optional prefix (DeepSeek-V3's MTP) may be absent as a whole."""
        started = {module_name for module_name, *_ in self.seen}
        for module_name, module in modules.items():
            if not isinstance(module, FusedMoE) or module.block_size is None:
                continue
            if module_name.startswith(optional) and module_name not in started:
                continue
            for expert in range(module.expert_start, module.expert_start + module.num_local):
                for shard in ("gate", "up", "down"):
                    for kind in ("weight", module.scale_name):
                        if (module_name, expert, shard, kind) not in self.seen:
                            proj = self.proj_names.get((module_name, shard), f"{shard}_proj")
                            raise QuantizationError(
                                f"checkpoint lacks {module_name}.{expert}.{proj}.{kind}"
                            )


class KeptInt4Experts:
    """Stores the int4 expert projections the ExpertLoader completes (their gemm.int4 arguments)
    into the MoE layers that keep int4 codes, and names the first projection a checkpoint
    lacks."""

    def __init__(self) -> None:
        self.stored: set[tuple[str, int, str]] = set()
        self.kinds: dict[tuple[str, str], set[str]] = {}  # (module, shard) -> tensor kinds seen
        self.proj_names: dict[tuple[str, str], str] = {}

    def storer(self, prefix, module: FusedMoE, module_name, expert, shard, kind):
        self.kinds.setdefault((module_name, shard), set()).add(kind)
        self.proj_names[(module_name, shard)] = prefix.rsplit(".", 1)[-1]

        def store(args) -> None:
            try:
                codes, scales, zeros, order = int4_expert_from_gemm(args)
                module.load_expert_int4(expert, shard, codes, scales, zeros, order)
            except ValueError as e:
                raise QuantizationError(f"{prefix}: {e}") from None
            self.stored.add((module_name, expert, shard))

        return store

    def finish(self, modules: dict, optional: tuple[str, ...] = ()) -> None:
        """Every expert projection of every layer that keeps int4 codes was stored; a layer
        under an optional prefix (DeepSeek-V3's MTP) may be absent as a whole."""
        started = {module_name for module_name, *_ in self.stored}
        for module_name, module in modules.items():
            if not isinstance(module, FusedMoE) or module.int4_group is None:
                continue
            if module_name.startswith(optional) and module_name not in started:
                continue
            for expert in range(module.expert_start, module.expert_start + module.num_local):
                for shard in ("gate", "up", "down"):
                    if (module_name, expert, shard) not in self.stored:
                        proj = self.proj_names.get((module_name, shard), f"{shard}_proj")
                        kinds = ", ".join(sorted(self.kinds.get((module_name, shard), ())))
                        raise QuantizationError(
                            f"checkpoint lacks {module_name}.{expert}.{proj}"
                            + (f" ({kinds})" if kinds else "")
                        )
