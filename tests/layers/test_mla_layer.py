"""The MLA cache stores the latent: DeepSeek-V2-Lite's real config (benchmarks/configs) builds
(on the meta device, no memory) with a cache row of kv_lora_rank + qk_rope_head_dim per token and
layer, against what full per-head K/V would cost; the runner sizes its pool from that row."""

from __future__ import annotations

import os

import pytest
import torch
from sglang.backend.selection import select_platform
from sglang.layers.ops_table import OpTable
from sglang.mem.kv_cache import KVCache
from sglang.model_loader.config import load_model_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
V2_LITE = os.path.join(ROOT, "benchmarks", "configs", "deepseek-v2-lite")


def test_deepseek_v2_lite_cache_holds_latent_and_rope_part():
    from sglang_models.deepseek import DeepseekV2ForCausalLM

    cfg = load_model_config(V2_LITE, dtype="bfloat16")
    hf = cfg.raw
    ops = OpTable(select_platform("reference"))
    model = DeepseekV2ForCausalLM(hf, ops, torch.bfloat16, torch.device("meta"))
    heads, k_dim, v_dim = model.kv_cache_geometry()
    assert (heads, k_dim, v_dim) == (1, 512 + 64, 0)
    latent = KVCache.bytes_per_token(27, heads, k_dim, v_dim, torch.bfloat16)
    full = KVCache.bytes_per_token(27, 16, 128 + 64, 128, torch.bfloat16)
    assert latent == 27 * 576 * 2 == 31_104
    assert full == 27 * 16 * (192 + 128) * 2 == 276_480
    assert full / latent == pytest.approx(8.89, abs=0.01)
    # 64 routed experts of 1408 in layers 1..26, 2 shared; layer 0 dense.
    assert model.model.layers[1].mlp.experts.w13_weight.shape == (64, 2 * 1408, 2048)
    assert model.model.layers[0].mlp.gate_up_proj.weight.shape == (2 * 10944, 2048)


def test_deepseek_v3_mtp_layer_loads_from_checkpoint_names():
    """Checkpoint layer N (= num_hidden_layers) is the MTP layer: its tensors land in mtp.0."""
    import transformers as tf
    from sglang_models.deepseek import DeepseekV3ForCausalLM

    hf = tf.DeepseekV3Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        moe_intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        n_routed_experts=4,
        num_experts_per_tok=2,
        n_group=2,
        topk_group=1,
        first_k_dense_replace=1,
        q_lora_rank=16,
        kv_lora_rank=16,
        qk_rope_head_dim=8,
        qk_nope_head_dim=8,
        v_head_dim=8,
        num_nextn_predict_layers=1,
    )
    model = DeepseekV3ForCausalLM(hf, OpTable(select_platform("reference")), torch.float32, None)
    tensors = {
        "model.layers.2.eh_proj.weight": torch.randn(32, 64),
        "model.layers.2.shared_head.head.weight": torch.randn(64, 32),
        "model.layers.2.mlp.experts.3.down_proj.weight": torch.randn(32, 16),
        "model.layers.2.mlp.gate.e_score_correction_bias": torch.randn(4),
        "model.layers.2.self_attn.kv_b_proj.weight": torch.randn(2 * 16, 16),
        "model.layers.1.mlp.experts.0.gate_proj.weight": torch.randn(16, 32),
    }
    loaded = model.load_weights(tensors.items())
    assert {
        "mtp.0.eh_proj.weight",
        "mtp.0.mlp.experts.w2_weight",
        "mtp.0.mlp.experts.correction_bias",
        "mtp.0.self_attn.attn.kv_b_proj.weight",
        "model.layers.1.mlp.experts.w13_weight",
    } <= loaded
    mtp, t = model.mtp[0], tensors
    assert torch.equal(
        mtp.mlp.experts.w2_weight[3], t["model.layers.2.mlp.experts.3.down_proj.weight"]
    )
    assert torch.equal(mtp.shared_head.head.weight, t["model.layers.2.shared_head.head.weight"])
    assert model.optional_weights == ("mtp.",)
