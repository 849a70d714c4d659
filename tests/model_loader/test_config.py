"""ModelConfig: fields read from saved configs, and the normalisations across families."""

import json
import os

import pytest
import torch
from sglang.model_loader import load_model_config
from sglang.model_loader.config import model_config_from_hf


def test_tiny_llama_config(tiny_llama):
    directory, _ = tiny_llama
    config = load_model_config(directory)
    assert config.architectures == ("LlamaForCausalLM",)
    assert config.model_type == "llama"
    assert (config.hidden_size, config.num_hidden_layers) == (64, 2)
    assert (config.num_attention_heads, config.num_key_value_heads) == (4, 2)
    assert config.head_dim == 16 and config.attention_scale == pytest.approx(0.25)
    assert (config.intermediate_size, config.vocab_size) == (128, 300)
    assert config.max_position_embeddings == 256
    assert config.rms_norm_eps == pytest.approx(1e-6)
    assert config.rope_theta == 10000.0 and config.rope_scaling is None
    assert config.partial_rotary_factor == 1.0
    assert config.tie_word_embeddings is False
    assert config.sliding_window is None and config.sliding_window_layers == ()
    assert config.hidden_act == "silu" and config.attention_bias is False
    assert (config.bos_token_id, config.eos_token_ids) == (1, (2,))
    assert config.attn_logit_softcapping is None and config.query_pre_attn_scalar is None
    assert config.quantization_config is None
    assert config.raw.model_type == "llama"


def test_dtype_resolution(tmp_path, save_llama):
    save_llama(tmp_path)
    assert load_model_config(tmp_path).dtype == torch.float32
    # With the config's dtype absent, "auto" reads the tensors' dtype from the file header.
    _drop_config_dtype(tmp_path)
    assert load_model_config(tmp_path).dtype == torch.float32
    assert load_model_config(tmp_path, dtype="bf16").dtype == torch.bfloat16
    assert load_model_config(tmp_path, dtype=torch.float16).dtype == torch.float16
    with pytest.raises(ValueError, match="unknown dtype"):
        load_model_config(tmp_path, dtype="int3")


def test_backend_preferred_dtype(tmp_path, save_llama, default_gguf):
    """--dtype auto takes the backend's preferred type where the checkpoint is float32 or
    quantized (as vLLM and SGLang serve float32 checkpoints in half precision); an explicit
    --dtype and a half-precision checkpoint keep theirs."""
    save_llama(tmp_path)
    config = load_model_config(tmp_path, preferred="bfloat16")
    assert config.dtype == torch.bfloat16 and "preferred" in config.dtype_reason
    assert load_model_config(tmp_path, dtype="float32", preferred="bfloat16").dtype == (
        torch.float32
    )
    assert load_model_config(default_gguf, preferred="bfloat16").dtype == torch.bfloat16
    assert load_model_config(default_gguf, preferred=None).dtype == torch.float32


def test_bfloat16_checkpoint_stays_bfloat16(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(
        LlamaConfig(
            hidden_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            intermediate_size=96,
            vocab_size=50,
        )
    ).to(torch.bfloat16)
    model.save_pretrained(tmp_path)
    assert load_model_config(tmp_path).dtype == torch.bfloat16
    assert load_model_config(tmp_path, preferred="float16").dtype == torch.bfloat16
    _drop_config_dtype(tmp_path)
    assert load_model_config(tmp_path).dtype == torch.bfloat16


def _drop_config_dtype(directory):
    path = os.path.join(directory, "config.json")
    with open(path) as f:
        raw = json.load(f)
    raw.pop("dtype", None)
    raw.pop("torch_dtype", None)
    with open(path, "w") as f:
        json.dump(raw, f)


def test_rope_scaling_normalised_from_legacy_type(tmp_path, save_llama):
    save_llama(tmp_path, rope_scaling={"type": "linear", "factor": 2.0}, rope_theta=5e5)
    config = load_model_config(tmp_path)
    assert config.rope_theta == 5e5
    assert config.rope_scaling == {"rope_type": "linear", "factor": 2.0}


def test_llama3_rope_scaling():
    from transformers import LlamaConfig

    scaling = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }
    raw = LlamaConfig(rope_scaling=dict(scaling), rope_theta=5e5, max_position_embeddings=131072)
    config = model_config_from_hf(raw, torch.bfloat16)
    assert config.rope_theta == 5e5 and config.rope_scaling == scaling
    assert config.head_dim == 128


def test_gemma2_alternating_sliding_window_and_softcaps():
    from transformers import Gemma2Config

    raw = Gemma2Config(num_hidden_layers=6, sliding_window=512, query_pre_attn_scalar=144)
    config = model_config_from_hf(raw, torch.bfloat16)
    assert config.architectures == ("Gemma2ForCausalLM",)
    assert config.sliding_window == 512
    assert config.sliding_window_layers == (0, 2, 4)
    assert config.uses_sliding_window(0) and not config.uses_sliding_window(1)
    assert config.attn_logit_softcapping == 50.0 and config.final_logit_softcapping == 30.0
    assert config.attention_scale == pytest.approx(144**-0.5)
    assert config.hidden_act == "gelu_pytorch_tanh"
    assert config.sliding_rope_theta is None
    assert config.rope_for_layer(0) == config.rope_for_layer(1) == (10000.0, None)


def test_gemma3_rope_per_layer_type():
    from transformers import Gemma3TextConfig

    raw = Gemma3TextConfig(num_hidden_layers=6)
    config = model_config_from_hf(raw, torch.bfloat16)
    assert config.sliding_window_layers == (0, 1, 2, 3, 4)
    assert config.rope_theta == 1e6 and config.sliding_rope_theta == 10000.0
    assert config.rope_for_layer(5) == (1e6, None)
    assert config.rope_for_layer(0) == (10000.0, None)


def test_gemma3_multimodal_reads_text_config():
    from transformers import Gemma3Config

    raw = Gemma3Config(text_config={"num_hidden_layers": 4, "hidden_size": 128})
    config = model_config_from_hf(raw, torch.bfloat16)
    assert (config.num_hidden_layers, config.hidden_size) == (4, 128)
    assert config.architectures == ("Gemma3ForConditionalGeneration",)


def test_mistral_every_layer_sliding_and_qwen2_none():
    from transformers import MistralConfig, Qwen2Config

    mistral = model_config_from_hf(MistralConfig(num_hidden_layers=3), torch.bfloat16)
    assert mistral.sliding_window == 4096 and mistral.sliding_window_layers == (0, 1, 2)
    qwen = model_config_from_hf(
        Qwen2Config(hidden_size=896, num_attention_heads=14, num_hidden_layers=2), torch.bfloat16
    )
    assert qwen.sliding_window is None and qwen.sliding_window_layers == ()
    assert qwen.head_dim == 64


def test_eos_list(tmp_path, save_llama):
    save_llama(tmp_path, eos_token_id=[2, 7])
    assert load_model_config(tmp_path).eos_token_ids == (2, 7)


def test_default_model_config(default_config):
    config = default_config
    assert config.architectures == ("LlamaForCausalLM",)
    assert (config.hidden_size, config.num_hidden_layers) == (576, 30)
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (9, 3, 64)
    assert (config.intermediate_size, config.vocab_size) == (1536, 49152)
    assert config.rope_theta == 100000.0 and config.rope_scaling is None
    assert config.tie_word_embeddings is True
    assert config.max_position_embeddings == 8192
    assert config.dtype == torch.float32  # quantized GGUF: its dequantized dtype
    assert config.eos_token_ids == (2,) and config.bos_token_id == 1


def test_missing_path_error():
    from sglang.model_loader import ModelSourceError

    with pytest.raises(ModelSourceError):
        load_model_config(os.path.join("/nonexistent", "x"))
