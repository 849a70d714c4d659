"""gpt-oss: Llama-style attention with biases, a learned softmax sink per head and sliding
windows on alternate layers (`layer_types`); in every layer a biased softmax top-k router over
experts with biases and the clamped SwiGLU (moe.experts' "swigluoai").

Float checkpoints: the experts come stacked, gate and up interleaved along the last axis
(gate_up_proj [E, D, 2I]: gate = [..., 0::2], up = [..., 1::2]; down_proj [E, I, D]) and are
rearranged into moe.experts' layout at load. MXFP4 checkpoints (the released ones, quant_method
"mxfp4"): the experts are <proj>_blocks / <proj>_scales in the [E, N, K] orientation
(gate_up_proj's N = 2I interleaved the same way), dequantized at load through gemm.fp4's mxfp4
layout into the float experts (moe.experts takes float weights): the memory of a float model,
the values the checkpoint describes."""

from __future__ import annotations

import logging

import torch
from sglang.layers.moe import FusedMoE, MoEConfigError, Routing, SparseMoE
from sglang.layers.quantization.base import QuantizationError
from sglang.layers.quantization.dequant import dequantize
from sglang.layers.quantization.mxfp4 import expert_weight_args
from sglang.ops.moe import SWIGLU_ALPHA, SWIGLU_LIMIT

from sglang_models.llama import LlamaAttention, LlamaDecoderLayer, LlamaForCausalLM, LlamaModel

logger = logging.getLogger(__name__)


class GptOssAttention(LlamaAttention):
    attention_sinks = True


class GptOssDecoderLayer(LlamaDecoderLayer):
    attention_cls = GptOssAttention

    def make_mlp(self, config, layer_id, ops, dtype, device):
        for field, value, want in (
            ("swiglu_limit", getattr(config, "swiglu_limit", SWIGLU_LIMIT), SWIGLU_LIMIT),
            ("swiglu_alpha", getattr(config, "swiglu_alpha", SWIGLU_ALPHA), SWIGLU_ALPHA),
        ):
            if float(value) != want:
                raise MoEConfigError(
                    f"mixture-of-experts config: {field} = {value!r}: moe.experts' swigluoai "
                    f"uses {want}"
                )
        routing = Routing(
            num_experts=config.num_local_experts,
            top_k=config.num_experts_per_tok,
            scoring_func="softmax",
            renormalize=True,  # softmax over the k chosen logits
            fields={"num_experts": "num_local_experts", "top_k": "num_experts_per_tok"},
        )
        return SparseMoE(
            routing,
            config.hidden_size,
            config.intermediate_size,
            ops,
            activation="swigluoai",
            expert_bias=True,
            router_bias=True,
            dtype=dtype,
            device=device,
        )


class GptOssModel(LlamaModel):
    layer_cls = GptOssDecoderLayer


def _deinterleave(t: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """2I along `dim` with gate, up interleaved -> gate first, then up."""
    t = t.movedim(dim, -1)
    return torch.cat([t[..., 0::2], t[..., 1::2]], dim=-1).movedim(-1, dim)


def _mxfp4_dense(blocks: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """gpt-oss `<proj>_blocks` [E, N, K/32, 16] / `<proj>_scales` [E, N, K/32] -> float32
    [E, N, K] (gemm.fp4's mxfp4 weights, dequantized)."""
    args = expert_weight_args(blocks, scales)
    return torch.stack(
        [
            dequantize("gemm.fp4", {"weight": w, "weight_scale": s, "format": "mxfp4"})
            for w, s in zip(args["weight"], args["weight_scale"])
        ]
    )


class GptOssForCausalLM(LlamaForCausalLM):
    model_cls = GptOssModel

    def load_weights(self, weights):
        modules = dict(self.named_modules())
        loaded: set[str] = set()
        packed: dict[str, torch.Tensor] = {}  # MXFP4 halves waiting for their other half

        def store(experts: FusedMoE, prefix: str, name: str, leaf: str, tensor) -> None:
            if leaf == "gate_up_proj":  # [E, D, 2I] -> [E, 2I, D]
                local, value = "w13_weight", _deinterleave(tensor).transpose(1, 2)
            elif leaf == "gate_up_proj_dense":  # dequantized MXFP4 [E, 2I, D]
                local, value = "w13_weight", _deinterleave(tensor, 1)
            elif leaf == "gate_up_proj_bias":
                local, value = "w13_bias", _deinterleave(tensor)
            elif leaf == "down_proj":  # [E, I, D] -> [E, D, I]
                local, value = "w2_weight", tensor.transpose(1, 2)
            elif leaf == "down_proj_dense":  # dequantized MXFP4 [E, D, I]
                local, value = "w2_weight", tensor
            elif leaf == "down_proj_bias":
                local, value = "w2_bias", tensor
            else:
                raise KeyError(f"checkpoint tensor {name!r}: unknown gpt-oss expert tensor")
            experts.load_stacked(local, value, what=name)
            loaded.add(f"{prefix}.{local}")

        def store_mxfp4(experts: FusedMoE, prefix, name, proj, part, tensor) -> None:
            if tensor.dtype != torch.uint8 or tensor.dim() != (4 if part == "blocks" else 3):
                raise QuantizationError(
                    f"{name}: {tuple(tensor.shape)} {tensor.dtype}, expected uint8 MXFP4 "
                    + ("blocks [E, N, K/32, 16]" if part == "blocks" else "scales [E, N, K/32]")
                )
            if part == "blocks":  # [E, N, K/32, 16] -> [E, N, K/2]
                tensor = tensor.flatten(2)
            local = ("w13_" if proj == "gate_up_proj" else "w2_") + (
                "weight" if part == "blocks" else "scale"
            )
            if proj == "gate_up_proj":  # rows: gate, up interleaved -> gate first, then up
                tensor = _deinterleave(tensor, 1)
            elif proj != "down_proj":
                raise KeyError(f"checkpoint tensor {name!r}: unknown gpt-oss expert tensor")
            experts.load_stacked(local, tensor, what=name)
            loaded.add(f"{prefix}.{local}")
            kept.setdefault(prefix, set()).add(f"{proj}_{part}")

        kept: dict[str, set[str]] = {}  # MXFP4 tensors loaded as they are, by experts module

        def rest():
            for name, tensor in weights:
                name = name.replace(".mlp.router.", ".mlp.gate.")
                prefix, _, leaf = name.rpartition(".")
                if leaf == "sinks" and f"{prefix}.attn" in modules:  # [H]: this rank's heads
                    modules[f"{prefix}.attn"].load_sinks(tensor)
                    loaded.add(f"{prefix}.attn.sinks")
                    continue
                experts = modules.get(prefix)
                if not isinstance(experts, FusedMoE):
                    yield name, tensor
                    continue
                proj, _, part = leaf.rpartition("_")
                if part not in ("blocks", "scales"):
                    store(experts, prefix, name, leaf, tensor)
                    continue
                if experts.kept == "mxfp4":  # as they are (FusedMoE.keep_mxfp4)
                    store_mxfp4(experts, prefix, name, proj, part, tensor)
                    continue
                other = f"{prefix}.{proj}_{'scales' if part == 'blocks' else 'blocks'}"
                if other not in packed:
                    packed[name] = tensor
                    continue
                halves = {
                    part: tensor,
                    "blocks" if part == "scales" else "scales": packed.pop(other),
                }
                dense = _mxfp4_dense(halves["blocks"], halves["scales"])
                dequantized.append(name)
                store(experts, prefix, name, f"{proj}_dense", dense)

        dequantized: list[str] = []
        loaded |= super().load_weights(rest())
        if dequantized:
            logger.info(
                "gpt-oss: %d MXFP4 expert tensors dequantized at load into %s (moe.experts "
                "takes float weights: the float model's memory)",
                len(dequantized),
                next(self.parameters()).dtype,
            )
        for prefix, seen in kept.items():
            for proj in ("gate_up_proj", "down_proj"):
                for part in ("blocks", "scales"):
                    if f"{proj}_{part}" not in seen:
                        raise QuantizationError(
                            f"checkpoint lacks {prefix}.{proj}_{part} (MXFP4 experts come as "
                            "_blocks and _scales)"
                        )
        if packed:
            name = next(iter(packed))
            base, _, part = name.rpartition("_")
            raise QuantizationError(
                f"checkpoint lacks {base}_{'scales' if part == 'blocks' else 'blocks'} "
                f"(MXFP4 experts come as _blocks and _scales)"
            )
        return loaded
