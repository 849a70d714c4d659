"""Tiny random Hugging Face models of every supported architecture, saved to a directory, for
parity tests against transformers. Weights are drawn with a large init range so the logits are
well separated and greedy decoding is not decided by float rounding."""

from __future__ import annotations

import torch

COMMON = dict(
    vocab_size=512,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=1024,
    initializer_range=0.25,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)


def configs() -> dict:
    import transformers as tf

    return {
        "llama": tf.LlamaConfig(**COMMON),
        "llama3.2": tf.LlamaConfig(  # llama3 rope scaling, tied embeddings
            **COMMON,
            tie_word_embeddings=True,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
        ),
        "mistral": tf.MistralConfig(**COMMON, sliding_window=None),
        "qwen2": tf.Qwen2Config(**COMMON),
        "qwen3": tf.Qwen3Config(**COMMON, head_dim=32),
        "mistral-swa": tf.MistralConfig(**COMMON, sliding_window=6),
        "mixtral": tf.MixtralConfig(
            **{**COMMON, "intermediate_size": 32}, num_local_experts=4, num_experts_per_tok=2
        ),
        "qwen2-moe": tf.Qwen2MoeConfig(  # a shared expert; layer 1 dense
            **COMMON,
            moe_intermediate_size=32,
            shared_expert_intermediate_size=48,
            num_experts=8,
            num_experts_per_tok=2,
            mlp_only_layers=[1],
        ),
        "qwen3-moe": tf.Qwen3MoeConfig(
            **COMMON,
            head_dim=32,
            moe_intermediate_size=32,
            num_experts=8,
            num_experts_per_tok=3,
            norm_topk_prob=True,
        ),
        "deepseek-v2-lite": tf.DeepseekV2Config(  # no q LoRA, greedy routing, 1 dense layer
            **{**COMMON, "num_key_value_heads": 4},
            moe_intermediate_size=32,
            n_routed_experts=8,
            num_experts_per_tok=2,
            n_shared_experts=2,
            first_k_dense_replace=1,
            q_lora_rank=None,
            kv_lora_rank=32,
            qk_rope_head_dim=16,
            qk_nope_head_dim=32,
            v_head_dim=24,
            topk_method="greedy",
        ),
        "deepseek-v2": tf.DeepseekV2Config(  # q LoRA, group-limited routing, scaling
            **{**COMMON, "num_key_value_heads": 4},
            moe_intermediate_size=32,
            n_routed_experts=8,
            num_experts_per_tok=2,
            n_shared_experts=1,
            q_lora_rank=48,
            kv_lora_rank=32,
            qk_rope_head_dim=16,
            qk_nope_head_dim=32,
            v_head_dim=32,
            topk_method="group_limited_greedy",
            n_group=4,
            topk_group=2,
            routed_scaling_factor=2.0,
        ),
        "deepseek-v3": tf.DeepseekV3Config(  # sigmoid, noaux_tc with its bias, 1 dense layer
            **{**COMMON, "num_key_value_heads": 4},
            moe_intermediate_size=32,
            n_routed_experts=8,
            num_experts_per_tok=2,
            n_shared_experts=1,
            first_k_dense_replace=1,
            q_lora_rank=48,
            kv_lora_rank=32,
            qk_rope_head_dim=16,
            qk_nope_head_dim=32,
            v_head_dim=32,
            n_group=4,
            topk_group=2,
            routed_scaling_factor=2.5,
        ),
        "gpt-oss": tf.GptOssConfig(  # sinks, sliding window 6 on even layers, clamped SwiGLU
            **{**COMMON, "intermediate_size": 32, "num_hidden_layers": 4},
            head_dim=16,
            num_local_experts=4,
            num_experts_per_tok=2,
            sliding_window=6,
            layer_types=["sliding_attention", "full_attention"] * 2,
        ),
        "gemma2": tf.Gemma2Config(
            **COMMON,
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=8,
            attn_logit_softcapping=20.0,
            final_logit_softcapping=15.0,
        ),
    }


def save_tiny_model(name: str, path: str, **overrides) -> str:
    """Build the named tiny model with transformers (config fields in `overrides` replaced),
    save it (safetensors) and return path."""
    import transformers as tf

    config = configs()[name]
    for key, value in overrides.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    model = tf.AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    with torch.no_grad():  # norms away from 1 (and Gemma's away from 0) so they matter
        for n, p in model.named_parameters():
            if "norm" in n:
                p.normal_(1.0 if "gemma" not in name else 0.0, 0.2)
            elif name == "gpt-oss" and n.endswith(("bias", "sinks")):  # zeros when made
                # gate/up biases wide enough that the SwiGLU's clamps bite on some rows
                p.normal_(0.0, 3.0 if n.endswith("gate_up_proj_bias") else 1.0)
        for n, b in model.named_buffers():  # DeepSeek-V3's routing bias, zeros when made
            if "e_score_correction_bias" in n:
                b.normal_(0.0, 0.1)
    model.save_pretrained(path, safe_serialization=True)
    return path


def greedy_continuation(model, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
    """Plain argmax decoding with a Hugging Face model, nothing masked (EOS included): what
    `ignore_eos` greedy decoding must produce. (`generate(min_new_tokens=...)` would mask EOS.)"""
    ids = list(prompt_ids)
    past = None
    with torch.no_grad():
        step = torch.tensor([ids])
        for _ in range(max_new_tokens):
            out = model(step, past_key_values=past, use_cache=True)
            past = out.past_key_values
            ids.append(int(out.logits[0, -1].argmax()))
            step = torch.tensor([[ids[-1]]])
    return ids[len(prompt_ids) :]


def hf_model(path: str, dtype: torch.dtype = torch.float32):
    """The saved model in transformers, as the reference: eager attention, the plain math
    every transformers version has. Not the default implementation: transformers 5.17 (the
    GPU image's) picks SDPA for Gemma 2, and its SDPA path drops the attention-logit soft-cap
    (5.24 refuses SDPA for Gemma 2 and falls back to eager), so the reference itself moved with
    the installed version (tiny Gemma 2: prompt logprobs 0.053 apart)."""
    import transformers as tf

    return tf.AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype, attn_implementation="eager"
    ).eval()


def hf_greedy(path: str, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
    return greedy_continuation(hf_model(path), prompt_ids, max_new_tokens)


def hf_prompt_logprobs(path: str, prompt_ids: list[int]) -> list[float]:
    """log p(prompt[i] | prompt[:i]) for i >= 1."""
    with torch.no_grad():
        logits = hf_model(path)(torch.tensor([prompt_ids])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return [float(logprobs[i - 1, prompt_ids[i]]) for i in range(1, len(prompt_ids))]
