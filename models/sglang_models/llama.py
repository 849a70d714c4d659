"""Llama (2, 3, 3.1, 3.2) and Mistral, over core layers. Qwen2/Qwen3 reuse it (sglang_models.qwen).

Parameter names follow Hugging Face's, except the merged projections (qkv_proj, gate_up_proj),
which `load_weights` fills shard by shard.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from sglang.forward_batch import ForwardBatch
from sglang.layers.attention import Attention
from sglang.layers.base import Layer
from sglang.layers.embedding import LMHead, VocabEmbedding
from sglang.layers.linear import Linear
from sglang.layers.merged_linear import QKVLinear
from sglang.layers.mlp import GatedMLP
from sglang.layers.moe import SparseMoE
from sglang.layers.norm import RMSNorm
from sglang.layers.ops_table import OpTable
from sglang.layers.quantization.experts import ExpertLoader
from sglang.layers.quantization.kv_scales import is_kv_scale, load_kv_scale
from sglang.layers.rotary import RotaryEmbedding
from sglang.model_loader.config import sliding_window_layers
from sglang.parallel.pipeline import MissingLayer, Stage, skipped_weight
from torch import nn

# checkpoint name piece -> (merged module name piece, shard)
STACKED = (
    ("q_proj", "qkv_proj", "q"),
    ("k_proj", "qkv_proj", "k"),
    ("v_proj", "qkv_proj", "v"),
    ("gate_proj", "gate_up_proj", "gate"),
    ("up_proj", "gate_up_proj", "up"),
)


def rope_scaling_of(config) -> dict | None:
    scaling = getattr(config, "rope_scaling", None)
    params = getattr(config, "rope_parameters", None)  # transformers 5 keeps rope settings here
    if params and not scaling:
        scaling = params
    if not scaling:
        return None
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    return None if kind == "default" else dict(scaling)


def rope_theta_of(config) -> float:
    theta = getattr(config, "rope_theta", None)
    params = getattr(config, "rope_parameters", None)
    if theta is None and params:
        theta = params.get("rope_theta")
    return float(theta if theta is not None else 10000.0)


class LlamaAttention(Layer):
    qk_norm = False  # Qwen3 normalises q and k per head before rope
    fuse_qk_norm = True
    """q_norm, k_norm and rope as one rope.qk_norm op where the backend has a kernel of its own
    for it (cuda, rocm, xeon): two launches fewer a layer. On the H200, Qwen3-30B-A3B batch-1
    decode 3.30 ms a token with it against 3.42 without (scheduler loop, same call)."""
    fuse_kv_store = True
    """rope (and the q/k norms) and kv.store as one rope.kv_store op where the backend has a
    kernel of its own for it and the KV cache is in the model's dtype: one launch fewer a
    layer, and the rotated keys written once, into the cache."""

    def __init__(self, config, layer_id: int, ops: OpTable, dtype, device) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = getattr(config, "num_key_value_heads", None) or self.num_heads
        self.head_dim = getattr(config, "head_dim", None) or hidden // self.num_heads
        bias = bool(getattr(config, "attention_bias", False)) or self.qkv_bias
        kw = dict(dtype=dtype, device=device)
        # Tensor parallel: heads split over the ranks (KV heads replicated when fewer).
        self.qkv_proj = QKVLinear(
            hidden, self.head_dim, self.num_heads, self.num_kv_heads, ops, bias=bias, **kw
        )
        q = self.num_heads * self.head_dim
        self.o_proj = Linear(
            q,
            hidden,
            ops,
            bias=bool(getattr(config, "attention_bias", False)),
            parallel="row",
            **kw,
        )
        self.num_heads = self.qkv_proj.shard_offsets["q"][1] // self.head_dim
        self.num_kv_heads = self.qkv_proj.shard_offsets["k"][1] // self.head_dim
        self.head_split = (self.num_heads, self.num_kv_heads, self.num_kv_heads)
        if self.qk_norm:
            eps = config.rms_norm_eps
            self.q_norm = RMSNorm(self.head_dim, ops, eps=eps, **kw)
            self.k_norm = RMSNorm(self.head_dim, ops, eps=eps, **kw)
            # q_norm, k_norm and rope in one launch where the backend has the fused kernel
            self.fused_qk_norm = self.fuse_qk_norm and ops.native("rope.qk_norm")
        # rope and kv.store in one launch where the backend has the fused kernel (cuda, rocm)
        self.fused_kv_store = self.fuse_kv_store and ops.native("rope.kv_store")
        self.rotary_emb = RotaryEmbedding(
            self.head_dim,
            int(self.head_dim * getattr(config, "partial_rotary_factor", 1.0)),
            config.max_position_embeddings,
            rope_theta_of(config),
            ops,
            scaling=rope_scaling_of(config),
            is_neox=True,
            device=device,
        )
        self.attn = Attention(
            self.num_heads,
            self.num_kv_heads,
            self.head_dim,
            layer_id,
            ops,
            scale=self.attention_scale(config),
            sliding_window=self.sliding_window(config, layer_id),
            logit_softcap=self.logit_softcap(config),
            sinks=self.attention_sinks,
            device=device,
        )

    qkv_bias = False
    attention_sinks = False  # gpt-oss: a learned softmax sink per head (self_attn.attn.sinks)

    def attention_scale(self, config) -> float:
        return self.head_dim**-0.5

    def sliding_window(self, config, layer_id: int) -> int:
        """The config's window on the layers that slide (`layer_types`, else every layer when
        a window is set and not switched off: Mistral, Qwen2's use_sliding_window), else -1."""
        window = getattr(config, "sliding_window", None)
        return int(window) if window and layer_id in sliding_window_layers(config) else -1

    def logit_softcap(self, config) -> float:
        return 0.0

    def forward(
        self, positions: torch.Tensor, x: torch.Tensor, batch: ForwardBatch
    ) -> torch.Tensor:
        # One view as [T, heads, D] split along the heads: the q/k/v views of the merged
        # projection's output in two tensor calls (a split and three reshapes took four more).
        q, k, v = (
            self.qkv_proj(x)
            .reshape(x.shape[0], -1, self.head_dim)
            .split_with_sizes(self.head_split, 1)
        )
        caches = self.attn.plain_caches(batch, q.dtype) if self.fused_kv_store else None
        if caches is not None:
            norms = (self.q_norm, self.k_norm) if self.qk_norm else None
            q = self.rotary_emb.forward_and_store(
                positions, q, k, v, caches, batch.out_cache_loc, norms
            )
            return self.o_proj(self.attn(q, None, None, batch, stored=True))
        if self.qk_norm and self.fused_qk_norm:
            q, k = self.rotary_emb.forward_qk_norm(positions, q, k, self.q_norm, self.k_norm)
            return self.o_proj(self.attn(q, k, v, batch))
        if self.qk_norm:
            q = self.q_norm(q.reshape(-1, self.head_dim)).reshape(q.shape)
            k = self.k_norm(k.reshape(-1, self.head_dim)).reshape(k.shape)
        q, k = self.rotary_emb(positions, q, k)
        return self.o_proj(self.attn(q, k, v, batch))


class LlamaMLP(GatedMLP):
    def __init__(self, config, ops: OpTable, dtype, device) -> None:
        super().__init__(
            config.hidden_size,
            config.intermediate_size,
            ops,
            hidden_act=getattr(config, "hidden_act", "silu"),
            bias=bool(getattr(config, "mlp_bias", False)),
            dtype=dtype,
            device=device,
        )


class LlamaDecoderLayer(Layer):
    attention_cls = LlamaAttention

    def __init__(self, config, layer_id: int, ops: OpTable, dtype, device) -> None:
        super().__init__()
        eps = config.rms_norm_eps
        self.self_attn = self.attention_cls(config, layer_id, ops, dtype, device)
        self.mlp = self.make_mlp(config, layer_id, ops, dtype, device)
        self.input_layernorm = RMSNorm(config.hidden_size, ops, eps=eps, dtype=dtype, device=device)
        self.post_attention_layernorm = RMSNorm(
            config.hidden_size, ops, eps=eps, dtype=dtype, device=device
        )

        self._pending: tuple[bool, bool] | None = None  # see pending_norms

    def pending_norms(self) -> tuple[bool, bool]:
        """(input norm, post-attention norm): whether each is left to the block after it (a
        PendingNorm) because that block's first projection runs the norm inside its GEMM
        (gemm.dense_rms on the backend's own kernel, the layer served dense): one launch fewer
        a norm. Only blocks whose forward is known to take one. Decided at the first forward,
        once the weights are prepared."""
        if self._pending is None:
            attn, mlp = self.self_attn, self.mlp
            first = None
            if type(mlp).forward is GatedMLP.forward:
                first = mlp.gate_up_proj
            elif type(mlp).forward is SparseMoE.forward:
                first = mlp.gate
            self._pending = (
                type(attn).forward is LlamaAttention.forward and attn.qkv_proj.takes_pending_norm,
                first is not None and first.takes_pending_norm,
            )
        return self._pending

    def make_mlp(self, config, layer_id: int, ops: OpTable, dtype, device) -> Layer:
        """The feed-forward block of layer `layer_id` (mixture-of-experts models override)."""
        return LlamaMLP(config, ops, dtype, device)

    def forward(self, positions, hidden, residual, batch):
        pending_input, pending_post = self._pending or self.pending_norms()
        if pending_input:
            pending = self.input_layernorm.pending(hidden, residual)
            hidden = self.self_attn(positions, pending, batch)
            residual = pending.residual_out()
        else:
            if residual is None:
                residual = hidden
                hidden = self.input_layernorm(hidden)
            else:
                hidden, residual = self.input_layernorm(hidden, residual)
            hidden = self.self_attn(positions, hidden, batch)
        if pending_post:
            pending = self.post_attention_layernorm.pending(hidden, residual)
            return self.mlp(pending), pending.residual_out()
        hidden, residual = self.post_attention_layernorm(hidden, residual)
        return self.mlp(hidden), residual


class LlamaModel(Layer):
    """Under pipeline parallelism (sglang.parallel.pipeline) a stage builds its own layers
    (the others are MissingLayer), the embedding on the first stage (and the last when the
    head is tied to it), the norm on the last; `forward` returns None on the other stages."""

    layer_cls = LlamaDecoderLayer
    supports_pipeline = True  # a subclass with a forward of its own sets False

    def __init__(self, config, ops: OpTable, dtype, device) -> None:
        super().__init__()
        pp = getattr(getattr(ops, "parallel", None), "pp", None)
        self.stage = Stage(pp, config.num_hidden_layers) if pp and pp.size > 1 else None
        stage = self.stage
        if stage is not None and not self.supports_pipeline:
            raise ValueError(f"{type(self).__name__}: --pp-size > 1 is not served for this model")
        tied = bool(getattr(config, "tie_word_embeddings", False))
        if stage is None or stage.is_first or (tied and stage.is_last):
            self.embed_tokens = VocabEmbedding(
                config.vocab_size, config.hidden_size, dtype, device, ops=ops
            )
        self.layers = nn.ModuleList(
            self.layer_cls(config, i, ops, dtype, device)
            if stage is None or stage.holds(i)
            else MissingLayer()
            for i in range(config.num_hidden_layers)
        )
        if stage is None or stage.is_last:
            self.norm = RMSNorm(
                config.hidden_size, ops, eps=config.rms_norm_eps, dtype=dtype, device=device
            )
        self.hidden_size, self.dtype, self.device = config.hidden_size, dtype, device

    def embed(self, input_ids):
        """The first layer's input (Gemma scales it)."""
        return self.embed_tokens(input_ids)

    def forward(self, input_ids, positions, batch):
        stage = self.stage
        if stage is None:
            hidden, residual = self.embed(input_ids), None
            for layer in self.layers:
                hidden, residual = layer(positions, hidden, residual, batch)
            hidden, _ = self.norm(hidden, residual)
            return hidden
        if stage.is_first:
            hidden, residual = self.embed(input_ids), None
        else:
            shape = (input_ids.shape[0], self.hidden_size, self.dtype, input_ids.device)
            hidden, residual = stage.receive(*shape)
        for i in stage.layers:
            hidden, residual = self.layers[i](positions, hidden, residual, batch)
        if not stage.is_last:
            stage.send(hidden, residual)
            return None
        hidden, _ = self.norm(hidden, residual)
        return hidden


class LlamaForCausalLM(Layer):
    model_cls = LlamaModel
    stacked = STACKED  # the checkpoint matrices load_weights merges

    def __init__(self, config, ops: OpTable, dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        self.config = config
        self.model = self.model_cls(config, ops, dtype, device)
        self.tied = bool(getattr(config, "tie_word_embeddings", False))
        stage = getattr(self.model, "stage", None)
        if stage is not None and not stage.is_last:
            return  # the head lives on the last pipeline stage
        self.lm_head = LMHead(
            config.vocab_size,
            config.hidden_size,
            ops,
            final_softcap=getattr(config, "final_logit_softcapping", None) or 0.0,
            dtype=dtype,
            device=device,
        )
        if self.tied:
            self.lm_head.tie(self.model.embed_tokens)

    def forward(self, batch: ForwardBatch) -> torch.Tensor | None:
        """Logits [len(batch.logits_indices), vocab] in float32 (None on a pipeline stage
        other than the last)."""
        hidden = self.model(batch.input_ids, batch.positions, batch)
        if hidden is None:
            return None
        return self.lm_head(hidden[batch.logits_indices])

    # --- weights ---------------------------------------------------------------------------
    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        """Copy checkpoint tensors (Hugging Face names) into the parameters; returns the names
        of the parameters that were filled. Unknown names raise, so a wrong mapping is loud."""
        params = dict(self.named_parameters(remove_duplicate=False))
        modules = dict(self.named_modules())
        loaded: set[str] = set()
        config = getattr(self, "quant_config", None)  # sglang.layers.quantization.model
        dequantized = ExpertLoader(config, torch.float32) if config is not None else None
        stage = getattr(self.model, "stage", None)
        embedding = hasattr(self.model, "embed_tokens")
        for name, tensor in weights:
            if "rotary_emb.inv_freq" in name or skipped_weight(name, stage, embedding):
                continue
            if self.tied and name == "lm_head.weight":
                continue
            if is_kv_scale(name):  # fp8 KV cache scales, wherever the format puts them
                load_kv_scale(modules, name, tensor)
                continue
            for piece, merged, shard in self.stacked:
                if f".{piece}." in name:
                    module_name, _, kind = name.replace(piece, merged).rpartition(".")
                    modules[module_name].load_shard(shard, tensor, name=kind)
                    loaded.add(f"{module_name}.{kind}")
                    break
            else:
                module_name, _, kind = name.rpartition(".")
                module = modules.get(module_name)
                if isinstance(module, (RMSNorm, VocabEmbedding)):
                    module.load(tensor)
                elif isinstance(module, Linear):
                    module.load(kind, tensor)
                elif dequantized is not None and getattr(module, "dequantize_on_load", False):
                    dequantized.add(
                        module_name,
                        kind,
                        tensor,
                        tuple(module.weight.shape),
                        module.weight.data.copy_,
                    )
                    name = f"{module_name}.weight"
                elif name in params:
                    if params[name].shape != tensor.shape:
                        raise ValueError(
                            f"{name}: checkpoint shape {tuple(tensor.shape)} != "
                            f"{tuple(params[name].shape)}"
                        )
                    params[name].data.copy_(tensor)
                else:
                    raise KeyError(
                        f"checkpoint tensor {name!r} has no parameter in {type(self).__name__}"
                    )
                loaded.add(name)
        if dequantized is not None:
            dequantized.finish()
        return loaded


class MistralForCausalLM(LlamaForCausalLM):
    """Mistral's dense models share Llama's architecture; a config's sliding window (7B v0.1)
    applies to every layer (LlamaAttention.sliding_window)."""
