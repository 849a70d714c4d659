"""Gemma 2: (1 + w) RMSNorms around both blocks, scaled embeddings, attention-logit and final
soft-caps, query_pre_attn_scalar, and sliding-window attention on alternate layers."""

from __future__ import annotations

import torch
from sglang.layers.base import Layer
from sglang.layers.norm import RMSNorm

from sglang_models.llama import LlamaAttention, LlamaForCausalLM, LlamaMLP, LlamaModel


def _is_sliding(config, layer_id: int) -> bool:
    layer_types = getattr(config, "layer_types", None)
    if layer_types:
        return layer_types[layer_id] == "sliding_attention"
    return layer_id % 2 == 0  # Gemma 2 before layer_types: even layers slide


class Gemma2Attention(LlamaAttention):
    def attention_scale(self, config) -> float:
        return float(config.query_pre_attn_scalar) ** -0.5

    def sliding_window(self, config, layer_id: int) -> int:
        window = getattr(config, "sliding_window", None)
        return int(window) if window and _is_sliding(config, layer_id) else -1

    def logit_softcap(self, config) -> float:
        return float(getattr(config, "attn_logit_softcapping", None) or 0.0)


class Gemma2MLP(LlamaMLP):
    def __init__(self, config, ops, dtype, device) -> None:
        act = getattr(config, "hidden_activation", None) or config.hidden_act
        config_view = _ConfigView(config, hidden_act=act)
        super().__init__(config_view, ops, dtype, device)


class _ConfigView:
    """A config with a few attributes overridden."""

    def __init__(self, config, **overrides) -> None:
        self._config, self._overrides = config, overrides

    def __getattr__(self, name):
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._config, name)


class Gemma2DecoderLayer(Layer):
    def __init__(self, config, layer_id, ops, dtype, device) -> None:
        super().__init__()
        kw = dict(eps=config.rms_norm_eps, offset=1.0, dtype=dtype, device=device)
        d = config.hidden_size
        self.self_attn = Gemma2Attention(config, layer_id, ops, dtype, device)
        self.mlp = Gemma2MLP(config, ops, dtype, device)
        self.input_layernorm = RMSNorm(d, ops, **kw)
        self.post_attention_layernorm = RMSNorm(d, ops, **kw)
        self.pre_feedforward_layernorm = RMSNorm(d, ops, **kw)
        self.post_feedforward_layernorm = RMSNorm(d, ops, **kw)

    def forward(self, positions, hidden, residual, batch):
        if residual is None:
            residual = hidden
            hidden = self.input_layernorm(hidden)
        else:
            hidden, residual = self.input_layernorm(hidden, residual)
        hidden = self.post_attention_layernorm(self.self_attn(positions, hidden, batch))
        hidden, residual = self.pre_feedforward_layernorm(hidden, residual)
        hidden = self.post_feedforward_layernorm(self.mlp(hidden))
        return hidden, residual


class Gemma2Model(LlamaModel):
    layer_cls = Gemma2DecoderLayer

    def __init__(self, config, ops, dtype, device) -> None:
        super().__init__(config, ops, dtype, device)
        if hasattr(self, "norm"):  # the last pipeline stage's
            self.norm = RMSNorm(
                config.hidden_size,
                ops,
                eps=config.rms_norm_eps,
                offset=1.0,
                dtype=dtype,
                device=device,
            )
        self.normalizer = float(config.hidden_size) ** 0.5

    def embed(self, input_ids):
        hidden = self.embed_tokens(input_ids)
        # Hugging Face rounds the normalizer to the hidden dtype before multiplying.
        return hidden * torch.tensor(self.normalizer, dtype=hidden.dtype)


class Gemma2ForCausalLM(LlamaForCausalLM):
    model_cls = Gemma2Model
