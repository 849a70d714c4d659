"""The quantization method contract: a `QuantizationConfig` per checkpoint format, and the
`LinearMethod` it hands each linear layer.

A method owns everything about one layer's weight between the checkpoint and the kernel:

  params(layer)          the parameters the format writes, by the checkpoint's names and shapes
                         (`ParamSpec`: shape, dtype, and how a merged layer's shards tile it)
  load(layer, name, tensor, shard)
                         copy one checkpoint tensor in (the default tiles shards by ParamSpec)
  process(layer)         after loading: the op's weight arguments in the op spec's canonical
                         layout (sglang.ops.quant); the selected kernel's `prepare` hook then
                         repacks them into the layout that backend wants (the backend hook)
  op                     the `gemm.*` op the layer runs from then on

The core never repacks for a device: what a method returns is the spec's format, and only a
kernel's `prepare` knows its own layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from sglang.layers.quantization.errors import QuantizationError

__all__ = ["LinearMethod", "ParamSpec", "QuantizationConfig", "QuantizationError", "is_ignored"]

if TYPE_CHECKING:
    from sglang.layers.linear import Linear


@dataclass(frozen=True)
class ParamSpec:
    """One parameter a method registers on a layer.

    output_dim: the dimension that runs along the layer's output features (None: none does);
    a merged layer's shard (start, size) fills [start / output_div, (start + size) /
    output_div) of it. output_div: output features per entry there (8 for int4 words packed
    along N, 128 for a 128-row block scale). per_shard: one entry per shard (per-tensor scales of
    a merged layer), shape[0] == number of shards. optional: may be absent from a checkpoint."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    output_dim: int | None = None
    output_div: int = 1
    input_dim: int | None = None
    input_div: int = 1
    per_shard: bool = False
    optional: bool = False
    fill: float = 0.0  # initial value (what an absent optional parameter keeps)


@dataclass
class LinearMethod:
    """How one linear layer stores, loads and runs its weight (see the module docstring)."""

    op: str = "gemm.dense"
    label: str = "dense"  # for the startup log: the format as a person reads it
    requires: tuple[str, ...] = ()  # capability keys the backend must have
    specs: dict[str, ParamSpec] = field(default_factory=dict)  # filled by create_weights

    def params(self, layer: Linear) -> dict[str, ParamSpec]:
        raise NotImplementedError

    def create_weights(self, layer: Linear) -> None:
        """Replace the layer's float weight by this format's parameters."""
        self.specs = self.params(layer)
        if "weight" not in self.specs:
            layer.weight = None
        device = layer.bias.device if layer.bias is not None else layer.device
        for name, spec in self.specs.items():
            if name == "weight" and layer.weight is not None and spec.dtype == layer.weight.dtype:
                continue  # load-time methods keep the float weight (and a tied head its tie)
            tensor = torch.full(spec.shape, spec.fill, dtype=torch.float32, device=device)
            layer.register_parameter(name, nn.Parameter(tensor.to(spec.dtype), requires_grad=False))

    def load(self, layer: Linear, name: str, tensor: torch.Tensor, shard: str | None) -> None:
        spec = self.specs.get(name)
        if spec is None:
            raise QuantizationError(
                f"{layer.checkpoint_name(name, shard)}: not a tensor of the {self.label} format "
                f"(it has {', '.join(sorted(self.specs))})"
            )
        load_tiled(layer, name, spec, tensor, shard)

    def process(self, layer: Linear) -> dict[str, Any]:
        """The op's weight arguments (and its non-tensor arguments), in the spec's layout."""
        raise NotImplementedError

    def check_loaded(self, layer: Linear) -> None:
        """Every required parameter arrived, for every shard: else name the first missing."""
        shards = list(layer.shard_names()) or [None]
        for name, spec in self.specs.items():
            if spec.optional:
                continue
            for shard in shards:
                if (name, shard) not in layer.loaded and (name, None) not in layer.loaded:
                    raise QuantizationError(
                        f"checkpoint lacks {layer.checkpoint_name(name, shard)} "
                        f"({self.label} format)"
                    )

    def has(self, layer: Linear, name: str) -> bool:
        return any(n == name for n, _ in layer.loaded)

    def dummy_fill(self, layer: Linear, gen: torch.Generator) -> None:
        """After `--load-format dummy`'s random fill: give the parameters whose zeros are no
        valid layout of the format (act-order's g_idx) values a checkpoint could hold."""


class QuantizationConfig:
    """A checkpoint format (or a load-time quantization). Subclasses set `name` (the
    `--quantization` choice / `quant_method`) and implement `from_config` and `linear_method`."""

    name: str = ""
    # True for formats computed at load time from a float checkpoint (--quantization int4/fp8).
    online: bool = False

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> QuantizationConfig:
        """From the checkpoint's quantization_config (an empty dict for a forced online one)."""
        raise NotImplementedError

    def linear_method(self, prefix: str, layer: Linear) -> LinearMethod | None:
        """The method for the linear layer `prefix` (its checkpoint names are
        `layer.checkpoint_prefixes(prefix)`), or None to keep it dense."""
        raise NotImplementedError

    def requires(self) -> tuple[str, ...]:
        """Capability keys a backend needs to serve this checkpoint (checked at startup)."""
        return ()

    def describe(self) -> str:
        """The format as the startup log and errors name it ("fp8 (block 128x128)")."""
        return self.name


def is_ignored(prefixes: list[str], patterns: list[str] | tuple[str, ...]) -> bool:
    """Whether any of a layer's checkpoint prefixes is named by an ignore list: exact names,
    trailing-name matches ("lm_head"), fnmatch globs ("*mlp.gate") or compressed-tensors'
    "re:" regexes."""
    import fnmatch
    import re

    for pattern in patterns or ():
        for prefix in prefixes:
            if pattern.startswith("re:"):
                if re.match(pattern[3:], prefix):
                    return True
            elif prefix == pattern or prefix.endswith("." + pattern):
                return True
            elif fnmatch.fnmatchcase(prefix, pattern) or fnmatch.fnmatchcase(
                prefix, pattern + ".*"
            ):
                return True
    return False


def load_tiled(
    layer: Linear, name: str, spec: ParamSpec, tensor: torch.Tensor, shard: str | None
) -> None:
    """Copy a checkpoint tensor into parameter `name`, into the rows of `shard` for a merged
    layer, after checking its shape."""
    param = getattr(layer, name)
    target = param.data
    if shard is not None and spec.per_shard:
        target = target[layer.shard_index(shard)]
    elif shard is not None and spec.output_dim is not None:
        start, size = layer.shard_offsets[shard]
        div = spec.output_div
        if start % div or size % div:
            raise QuantizationError(
                f"{layer.checkpoint_name(name, shard)}: shard of {size} output features at "
                f"{start} does not fall on the format's {div}-feature tiles"
            )
        target = target.narrow(spec.output_dim, start // div, size // div)
    elif spec.per_shard:
        target = target[0] if target.dim() else target
    elif shard is not None and any(n == name for n, _ in layer.loaded):
        # One tensor for the whole merged layer (GPTQ's g_idx): every shard must agree.
        if tuple(tensor.shape) == tuple(target.shape) and not torch.equal(
            tensor.to(target.device, target.dtype), target
        ):
            raise QuantizationError(
                f"{layer.checkpoint_name(name, shard)} differs from the other projections "
                f"merged into {layer.prefix} (they share one input and must share it)"
            )
    if tuple(tensor.shape) != tuple(target.shape):
        if tensor.numel() == 1 and target.numel() == 1:
            tensor = tensor.reshape(target.shape)
        else:
            raise QuantizationError(
                f"{layer.checkpoint_name(name, shard)}: checkpoint shape {tuple(tensor.shape)}, "
                f"the format needs {tuple(target.shape)}"
            )
    target.copy_(tensor)
    layer.loaded.add((name, shard))
