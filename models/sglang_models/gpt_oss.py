"""gpt-oss: Llama-style attention with biases, a learned softmax sink per head and sliding
windows on alternate layers (`layer_types`); in every layer a biased softmax top-k router over
experts with biases and the clamped SwiGLU (moe.experts' "swigluoai").

Checkpoints in bfloat16: the experts come stacked, gate and up interleaved along the last axis
(gate_up_proj [E, D, 2I]: gate = [..., 0::2], up = [..., 1::2]; down_proj [E, I, D]) and are
rearranged into moe.experts' layout at load. MXFP4 checkpoints (the released ones) are not read
here: their expert tensors are *_blocks / *_scales and fail the load naming them."""

from __future__ import annotations

import torch
from sglang.layers.moe import FusedMoE, MoEConfigError, Routing, SparseMoE
from sglang.ops.moe import SWIGLU_ALPHA, SWIGLU_LIMIT

from sglang_models.llama import LlamaAttention, LlamaDecoderLayer, LlamaForCausalLM, LlamaModel


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
            routing, config.hidden_size, config.intermediate_size, ops,
            activation="swigluoai", expert_bias=True, router_bias=True, dtype=dtype,
            device=device,
        )


class GptOssModel(LlamaModel):
    layer_cls = GptOssDecoderLayer


def _deinterleave(t: torch.Tensor) -> torch.Tensor:
    """[..., 2I] with gate, up interleaved -> [..., 2I] gate first, then up."""
    return torch.cat([t[..., 0::2], t[..., 1::2]], dim=-1)


class GptOssForCausalLM(LlamaForCausalLM):
    model_cls = GptOssModel

    def load_weights(self, weights):
        modules = dict(self.named_modules())
        loaded: set[str] = set()

        def rest():
            for name, tensor in weights:
                name = name.replace(".mlp.router.", ".mlp.gate.")
                prefix, _, leaf = name.rpartition(".")
                if leaf == "sinks":  # [H] of the whole layer: this rank's heads
                    modules[f"{prefix}.attn"].load_sinks(tensor)
                    loaded.add(f"{prefix}.attn.sinks")
                    continue
                experts = modules.get(prefix)
                if not isinstance(experts, FusedMoE):
                    yield name, tensor
                    continue
                if leaf == "gate_up_proj":  # [E, D, 2I] -> [E, 2I, D]
                    target, value = experts.w13_weight, _deinterleave(tensor).transpose(1, 2)
                elif leaf == "gate_up_proj_bias":
                    target, value = experts.w13_bias, _deinterleave(tensor)
                elif leaf == "down_proj":  # [E, I, D] -> [E, D, I]
                    target, value = experts.w2_weight, tensor.transpose(1, 2)
                elif leaf == "down_proj_bias":
                    target, value = experts.w2_bias, tensor
                else:
                    raise KeyError(f"checkpoint tensor {name!r}: unknown gpt-oss expert tensor")
                if tuple(target.shape) != tuple(value.shape):
                    raise ValueError(f"{name}: shape {tuple(value.shape)} != {tuple(target.shape)}")
                target.data.copy_(value)
                local = next(n for n, p in experts.named_parameters() if p is target)
                loaded.add(f"{prefix}.{local}")

        return super().load_weights(rest()) | loaded
