"""The GGUF config built from the metadata alone (sglang.model_loader.gguf_config) equals what
transformers' AutoConfig builds from the same file, for the default model and for small files
of every architecture family the engine serves from GGUF."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sglang.model_loader.gguf_config import gguf_config, gguf_config_dict


def _autoconfig(path: str):
    from transformers import AutoConfig

    directory, name = os.path.split(path)
    return AutoConfig.from_pretrained(directory, gguf_file=name, local_files_only=True)


def _write(path, arch: str, name: str, *, tied: bool, vocab_size: bool, sliding: bool) -> None:
    import gguf

    writer = gguf.GGUFWriter(path, arch)
    writer.add_name(name)
    writer.add_languages(["en"])
    writer.add_context_length(4096)
    writer.add_embedding_length(64)
    writer.add_block_count(2)
    writer.add_feed_forward_length(128)
    writer.add_rope_dimension_count(16)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(500000.0)
    if sliding:
        writer.add_sliding_window(128)
        writer.add_key_length(16)
        writer.add_value_length(16)
    if vocab_size:
        writer.add_vocab_size(32)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"t{i}" for i in range(32)])
    writer.add_token_types([1] * 32)
    writer.add_token_merges(["t 1", "t 2"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template("{{ messages }}")
    writer.add_tensor("token_embd.weight", np.zeros((32, 64), np.float32))
    if not tied:
        writer.add_tensor("output.weight", np.zeros((32, 64), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


CASES = [
    ("llama", "SmolLM2 135M", True, True, False),
    ("llama", "Mistral 7B Instruct", False, True, False),  # llama.cpp names Mistral llama
    ("llama", "Llama no vocab size", True, False, False),  # vocab_size from the tokens
    ("qwen2", "Qwen2.5 0.5B", True, True, False),
    ("qwen3", "Qwen3 0.6B", False, True, False),
    ("gemma2", "Gemma 2 2B", True, True, True),
    ("gemma3", "Gemma 3 1B", True, True, True),
    ("phi3", "Phi 3 mini", False, True, False),
]


@pytest.mark.parametrize("arch,name,tied,vocab_size,sliding", CASES)
def test_config_from_metadata_equals_autoconfig(tmp_path, arch, name, tied, vocab_size, sliding):
    path = str(tmp_path / "model.gguf")
    _write(path, arch, name, tied=tied, vocab_size=vocab_size, sliding=sliding)
    expected = _autoconfig(path)
    built = gguf_config(path, str(tmp_path))
    assert built is not None, arch
    assert type(built) is type(expected)
    assert built.to_dict() == expected.to_dict()
    assert built.name_or_path == expected.name_or_path


def test_default_model_config_equals_autoconfig(default_gguf):
    expected = _autoconfig(default_gguf)
    built = gguf_config(default_gguf, os.path.dirname(default_gguf))
    assert type(built) is type(expected)
    assert built.to_dict() == expected.to_dict()


def test_architectures_read_specially_are_left_to_transformers(tmp_path):
    path = str(tmp_path / "model.gguf")
    _write(path, "stablelm", "StableLM 2", tied=True, vocab_size=True, sliding=False)
    assert gguf_config_dict(path) is None
