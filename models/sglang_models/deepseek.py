"""DeepSeek-V2 / V2-Lite and DeepSeek-V3: multi-head latent attention (sglang.layers.mla), a
dense MLP in the first `first_k_dense_replace` layers, then routed experts plus shared experts.

Routing by `topk_method`: "greedy" (softmax, top-k), "group_limited_greedy" (V2: the experts of
the topk_group groups with the best maximum), "noaux_tc" (V3: sigmoid scores, the correction
bias in the choice, groups scored by their two best). V3's multi-token-prediction layers
(`num_nextn_predict_layers`, checkpoint layers N.. N+k-1) are built and loaded under `mtp`, and
not run: they wait for speculative decoding. Checkpoints without them (transformers drops them)
load too."""

from __future__ import annotations

import math
import re

from sglang.layers.base import Layer
from sglang.layers.embedding import VocabEmbedding
from sglang.layers.linear import Linear
from sglang.layers.mla import MLAttention, kv_cache_geometry
from sglang.layers.mlp import GatedMLP
from sglang.layers.moe import MoEConfigError, Routing, SparseMoE
from sglang.layers.norm import RMSNorm
from sglang.layers.rotary import RotaryEmbedding
from torch import nn

from sglang_models.llama import (
    LlamaDecoderLayer,
    LlamaForCausalLM,
    LlamaMLP,
    LlamaModel,
    rope_scaling_of,
    rope_theta_of,
)
from sglang_models.moe_weights import load_with_experts

TOPK_METHODS = ("greedy", "group_limited_greedy", "noaux_tc")
LATENT_NORM_EPS = 1e-6  # transformers' q_a / kv_a norms keep their default eps


def deepseek_routing(config, default_method: str, default_scoring: str) -> Routing:
    method = getattr(config, "topk_method", None) or default_method
    if method not in TOPK_METHODS:
        raise MoEConfigError(
            f"mixture-of-experts config: topk_method = {method!r}: unknown routing method; "
            f"known: {TOPK_METHODS}"
        )
    grouped = method != "greedy"
    return Routing(
        num_experts=config.n_routed_experts,
        top_k=config.num_experts_per_tok,
        scoring_func=getattr(config, "scoring_func", None) or default_scoring,
        renormalize=bool(getattr(config, "norm_topk_prob", False)),
        num_expert_group=config.n_group if grouped else None,
        topk_group=config.topk_group if grouped else None,
        routed_scaling_factor=float(getattr(config, "routed_scaling_factor", 1.0) or 1.0),
        correction_bias=method == "noaux_tc",
        fields={
            "num_experts": "n_routed_experts",
            "top_k": "num_experts_per_tok",
            "num_expert_group": "n_group",
        },
    )


def softmax_scale(config) -> float:
    """(Dn + P) ** -0.5, times yarn's mscale squared where the rope scaling sets mscale_all_dim."""
    scale = (config.qk_nope_head_dim + config.qk_rope_head_dim) ** -0.5
    scaling = rope_scaling_of(config) or {}
    factor, all_dim = scaling.get("factor", 1.0), scaling.get("mscale_all_dim", 0)
    if all_dim and factor > 1:
        mscale = 0.1 * all_dim * math.log(factor) + 1.0
        scale *= mscale * mscale
    return scale


class DeepseekAttention(Layer):
    rope_interleaved = True  # V3's rope_interleave; V2 always pairs (x[2i], x[2i+1])

    def __init__(self, config, layer_id: int, ops, dtype, device) -> None:
        super().__init__()
        d, heads = config.hidden_size, config.num_attention_heads
        rank, rope = config.kv_lora_rank, config.qk_rope_head_dim
        self.heads, self.rank, self.rope = heads, rank, rope
        self.nope = config.qk_nope_head_dim
        q_dim = heads * (self.nope + rope)
        bias = bool(getattr(config, "attention_bias", False))
        kw = dict(dtype=dtype, device=device)
        self.q_lora_rank = getattr(config, "q_lora_rank", None)
        if self.q_lora_rank:
            self.q_a_proj = Linear(d, self.q_lora_rank, ops, bias=bias, **kw)
            self.q_a_layernorm = RMSNorm(self.q_lora_rank, ops, eps=LATENT_NORM_EPS, **kw)
            self.q_b_proj = Linear(self.q_lora_rank, q_dim, ops, **kw)
        else:
            self.q_proj = Linear(d, q_dim, ops, **kw)
        self.kv_a_proj_with_mqa = Linear(d, rank + rope, ops, bias=bias, **kw)
        self.kv_a_layernorm = RMSNorm(rank, ops, eps=LATENT_NORM_EPS, **kw)
        self.o_proj = Linear(heads * config.v_head_dim, d, ops, bias=bias, **kw)
        interleaved = bool(getattr(config, "rope_interleave", True)) or self.rope_interleaved
        self.rotary_emb = RotaryEmbedding(
            rope,
            rope,
            config.max_position_embeddings,
            rope_theta_of(config),
            ops,
            scaling=rope_scaling_of(config),
            is_neox=not interleaved,
            device=device,
        )
        self.attn = MLAttention(
            heads,
            rank,
            self.nope,
            rope,
            config.v_head_dim,
            layer_id,
            ops,
            softmax_scale(config),
            **kw,
        )

    def forward(self, positions, x, batch):
        tokens = x.shape[0]
        if self.q_lora_rank:
            q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        else:
            q = self.q_proj(x)
        q = q.view(tokens, self.heads, self.nope + self.rope)
        latent, k_pe = self.kv_a_proj_with_mqa(x).split([self.rank, self.rope], dim=-1)
        latent = self.kv_a_layernorm(latent.contiguous())
        q_pe, k_pe = self.rotary_emb(
            positions, q[..., self.nope :].contiguous(), k_pe.reshape(tokens, 1, self.rope)
        )
        q[..., self.nope :] = q_pe
        out = self.attn(q, latent, k_pe.reshape(tokens, self.rope), batch)
        return self.o_proj(out)


class DeepseekV3Attention(DeepseekAttention):
    rope_interleaved = False  # follows the config's rope_interleave (default true)


class DeepseekV2DecoderLayer(LlamaDecoderLayer):
    attention_cls = DeepseekAttention
    default_method, default_scoring = "greedy", "softmax"

    def make_mlp(self, config, layer_id, ops, dtype, device):
        first_dense = getattr(config, "first_k_dense_replace", 0) or 0
        if layer_id < first_dense or not config.n_routed_experts:
            return LlamaMLP(config, ops, dtype, device)
        inter = config.moe_intermediate_size
        shared_n = getattr(config, "n_shared_experts", 0) or 0
        shared = None
        if shared_n:
            shared = GatedMLP(
                config.hidden_size,
                inter * shared_n,
                ops,
                config.hidden_act,
                dtype=dtype,
                device=device,
            )
        routing = deepseek_routing(config, self.default_method, self.default_scoring)
        return SparseMoE(
            routing,
            config.hidden_size,
            inter,
            ops,
            activation=config.hidden_act,
            shared=shared,
            shared_name="shared_experts",
            dtype=dtype,
            device=device,
        )


class DeepseekV3DecoderLayer(DeepseekV2DecoderLayer):
    attention_cls = DeepseekV3Attention
    default_method, default_scoring = "noaux_tc", "sigmoid"


class DeepseekV2Model(LlamaModel):
    layer_cls = DeepseekV2DecoderLayer


class DeepseekV3Model(LlamaModel):
    layer_cls = DeepseekV3DecoderLayer


class SharedHead(Layer):
    def __init__(self, config, ops, dtype, device) -> None:
        super().__init__()
        d = config.hidden_size
        self.norm = RMSNorm(d, ops, eps=config.rms_norm_eps, dtype=dtype, device=device)
        self.head = Linear(d, config.vocab_size, ops, dtype=dtype, device=device)


class MTPLayer(DeepseekV3DecoderLayer):
    """A multi-token-prediction layer: a decoder layer with its own embedding input norms,
    projection and head. Loaded, not run."""

    def __init__(self, config, layer_id, ops, dtype, device) -> None:
        super().__init__(config, layer_id, ops, dtype, device)
        d, kw = config.hidden_size, dict(dtype=dtype, device=device)
        self.embed_tokens = VocabEmbedding(config.vocab_size, d, dtype, device)
        self.enorm = RMSNorm(d, ops, eps=config.rms_norm_eps, **kw)
        self.hnorm = RMSNorm(d, ops, eps=config.rms_norm_eps, **kw)
        self.eh_proj = Linear(2 * d, d, ops, **kw)
        self.shared_head = SharedHead(config, ops, dtype, device)


class DeepseekV2ForCausalLM(LlamaForCausalLM):
    model_cls = DeepseekV2Model
    # Only the dense MLPs' gate / up are merged (DeepSeek's q_proj is not a qkv shard).
    stacked = (("gate_proj", "gate_up_proj", "gate"), ("up_proj", "gate_up_proj", "up"))
    optional_weights: tuple[str, ...] = ()  # parameter name prefixes a checkpoint may lack

    def __init__(self, config, ops, dtype, device) -> None:
        super().__init__(config, ops, dtype, device)
        self.num_layers = config.num_hidden_layers

    def kv_cache_geometry(self) -> tuple[int, int, int]:
        return kv_cache_geometry(self.config.kv_lora_rank, self.config.qk_rope_head_dim)

    def _rename(self, name: str) -> str:
        name = name.replace(".mlp.gate.e_score_correction_bias", ".mlp.experts.correction_bias")
        return name.replace(".self_attn.kv_b_proj.", ".self_attn.attn.kv_b_proj.")

    def load_weights(self, weights):
        renamed = ((self._rename(n), t) for n, t in weights)
        return load_with_experts(self, renamed, super().load_weights)


class DeepseekV3ForCausalLM(DeepseekV2ForCausalLM):
    model_cls = DeepseekV3Model
    optional_weights = ("mtp.",)

    def __init__(self, config, ops, dtype, device) -> None:
        super().__init__(config, ops, dtype, device)
        n = getattr(config, "num_nextn_predict_layers", None) or 0
        first = config.num_hidden_layers
        self.mtp = nn.ModuleList(MTPLayer(config, first + i, ops, dtype, device) for i in range(n))

    def _rename(self, name: str) -> str:
        m = re.match(r"model\.layers\.(\d+)\.(.*)$", name)
        if m and int(m[1]) >= self.num_layers:
            name = f"mtp.{int(m[1]) - self.num_layers}.{m[2]}"
        return super()._rename(name)
