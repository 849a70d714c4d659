"""Fixtures: tiny random Llama checkpoints saved by transformers, and the default GGUF model.

No hub is reachable: everything is loaded from local files, with HF_HUB_OFFLINE set.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

TINY = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    vocab_size=300,
    max_position_embeddings=256,
)


def save_tiny_llama(directory, seed=0, max_shard_size="50GB", **overrides):
    """Save a random tiny LlamaForCausalLM into `directory`; return its state dict."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**{**TINY, **overrides}))
    model.save_pretrained(directory, max_shard_size=max_shard_size)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="session")
def save_llama():
    """save_tiny_llama(directory, seed=0, max_shard_size="50GB", **config overrides)."""
    return save_tiny_llama


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """(directory, state dict) of a single-file safetensors tiny Llama, untied embeddings."""
    directory = tmp_path_factory.mktemp("tiny_llama")
    return str(directory), save_tiny_llama(directory)


@pytest.fixture(scope="session")
def default_gguf():
    from sglang.model_loader import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def default_config(default_gguf):
    from sglang.model_loader import load_model_config

    return load_model_config(default_gguf)


@pytest.fixture(scope="session")
def default_tokenizer(default_gguf):
    from sglang.model_loader import load_tokenizer

    return load_tokenizer(default_gguf)
