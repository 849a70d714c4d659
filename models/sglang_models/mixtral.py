"""Mixtral: Mistral's attention with a softmax top-k router over 8 experts in every layer."""

from __future__ import annotations

from sglang.layers.moe import Routing, SparseMoE

from sglang_models.llama import LlamaDecoderLayer, LlamaForCausalLM, LlamaModel
from sglang_models.moe_weights import load_with_experts


class MixtralDecoderLayer(LlamaDecoderLayer):
    def make_mlp(self, config, layer_id, ops, dtype, device):
        routing = Routing(
            num_experts=config.num_local_experts,
            top_k=config.num_experts_per_tok,
            scoring_func="softmax",
            renormalize=True,
            fields={"num_experts": "num_local_experts", "top_k": "num_experts_per_tok"},
        )
        return SparseMoE(
            routing,
            config.hidden_size,
            config.intermediate_size,
            ops,
            activation=config.hidden_act,
            dtype=dtype,
            device=device,
        )


class MixtralModel(LlamaModel):
    layer_cls = MixtralDecoderLayer


class MixtralForCausalLM(LlamaForCausalLM):
    model_cls = MixtralModel

    def load_weights(self, weights):
        # Mixtral's checkpoints name the block "block_sparse_moe"; the layer calls it mlp.
        renamed = ((n.replace(".block_sparse_moe.", ".mlp."), t) for n, t in weights)
        return load_with_experts(self, renamed, super().load_weights)
