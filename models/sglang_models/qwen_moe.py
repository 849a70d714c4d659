"""Qwen2-MoE (shared expert behind a sigmoid gate, qkv bias) and Qwen3-MoE (per-head q/k norm,
no shared expert). Layers listed in `mlp_only_layers`, or off the `decoder_sparse_step` beat,
keep a dense MLP."""

from __future__ import annotations

from sglang.layers.mlp import GatedMLP
from sglang.layers.moe import MoEConfigError, Routing, SparseMoE

from sglang_models.llama import LlamaDecoderLayer, LlamaForCausalLM, LlamaMLP, LlamaModel
from sglang_models.moe_weights import load_with_experts
from sglang_models.qwen import Qwen2Attention, Qwen3Attention


def is_sparse_layer(config, layer_id: int) -> bool:
    step = getattr(config, "decoder_sparse_step", 1) or 1
    if not isinstance(step, int) or step < 1:
        raise MoEConfigError(
            f"mixture-of-experts config: decoder_sparse_step = {step!r}: must be a positive integer"
        )
    only_dense = getattr(config, "mlp_only_layers", None) or ()
    return layer_id not in only_dense and config.num_experts > 0 and (layer_id + 1) % step == 0


def qwen_routing(config) -> Routing:
    return Routing(
        num_experts=config.num_experts,
        top_k=config.num_experts_per_tok,
        scoring_func="softmax",
        renormalize=bool(getattr(config, "norm_topk_prob", False)),
        fields={"num_experts": "num_experts", "top_k": "num_experts_per_tok"},
    )


class Qwen2MoeDecoderLayer(LlamaDecoderLayer):
    attention_cls = Qwen2Attention

    def make_mlp(self, config, layer_id, ops, dtype, device):
        if not is_sparse_layer(config, layer_id):
            return LlamaMLP(config, ops, dtype, device)
        shared = None
        shared_size = getattr(config, "shared_expert_intermediate_size", 0) or 0
        if shared_size:
            shared = GatedMLP(
                config.hidden_size, shared_size, ops, config.hidden_act, dtype=dtype, device=device
            )
        return SparseMoE(
            qwen_routing(config),
            config.hidden_size,
            config.moe_intermediate_size,
            ops,
            activation=config.hidden_act,
            shared=shared,
            shared_name="shared_expert",
            shared_gate=shared is not None,
            dtype=dtype,
            device=device,
        )


class Qwen2MoeModel(LlamaModel):
    layer_cls = Qwen2MoeDecoderLayer


class Qwen2MoeForCausalLM(LlamaForCausalLM):
    model_cls = Qwen2MoeModel

    def load_weights(self, weights):
        return load_with_experts(self, weights, super().load_weights)


class Qwen3MoeDecoderLayer(Qwen2MoeDecoderLayer):
    attention_cls = Qwen3Attention


class Qwen3MoeModel(LlamaModel):
    layer_cls = Qwen3MoeDecoderLayer


class Qwen3MoeForCausalLM(Qwen2MoeForCausalLM):
    model_cls = Qwen3MoeModel
