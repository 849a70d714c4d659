"""Tokenizer, chat template and generation defaults, from the GGUF and from HF directories."""

import json
import os
import shutil

import pytest
from sglang.model_loader import (
    ModelSourceError,
    chat_template,
    generation_defaults,
    load_tokenizer,
    sampling_defaults,
)


def test_default_tokenizer_round_trip(default_tokenizer):
    ids = default_tokenizer("Hello, world!")["input_ids"]
    assert ids and all(isinstance(i, int) for i in ids)
    assert default_tokenizer.decode(ids) == "Hello, world!"
    assert default_tokenizer.eos_token == "<|im_end|>" and default_tokenizer.eos_token_id == 2


def test_default_chat_template_renders(default_tokenizer, default_gguf):
    template = chat_template(default_tokenizer)
    assert template and "<|im_start|>" in template
    text = default_tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi there"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user\nHi there<|im_end|>\n" in text
    assert text.endswith("<|im_start|>assistant\n")


class _NoTemplate:
    chat_template = None


def test_chat_template_from_gguf_metadata(default_tokenizer, default_gguf, tiny_llama):
    assert chat_template(_NoTemplate(), default_gguf) == default_tokenizer.chat_template
    assert chat_template(_NoTemplate()) is None
    assert chat_template(_NoTemplate(), tiny_llama[0]) is None


def test_hf_directory_tokenizer(default_tokenizer, tiny_llama, tmp_path):
    directory, _ = tiny_llama
    for name in os.listdir(directory):
        shutil.copy(os.path.join(directory, name), tmp_path / name)
    default_tokenizer.save_pretrained(tmp_path / "tok")
    for name in os.listdir(tmp_path / "tok"):
        shutil.copy(tmp_path / "tok" / name, tmp_path / name)
    from_model_dir = load_tokenizer(tmp_path)
    from_tokenizer_dir = load_tokenizer(tmp_path / "tok")
    for tokenizer in (from_model_dir, from_tokenizer_dir):
        assert (
            tokenizer("Hello, world!")["input_ids"]
            == default_tokenizer("Hello, world!")["input_ids"]
        )
        assert chat_template(tokenizer) == chat_template(default_tokenizer)


def test_tokenizer_locations(default_gguf, tmp_path):
    from sglang.model_loader.tokenizer import _tokenizer_location

    directory, name = os.path.split(default_gguf)
    assert _tokenizer_location(default_gguf) == (directory, name)
    os.symlink(default_gguf, tmp_path / "only.gguf")
    assert _tokenizer_location(tmp_path) == (str(tmp_path), "only.gguf")
    (tmp_path / "tok").mkdir()
    assert _tokenizer_location(tmp_path / "tok") == (str(tmp_path / "tok"), None)
    with pytest.raises(ModelSourceError, match="does not exist"):
        _tokenizer_location(tmp_path / "absent")


def test_missing_tokenizer_files(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text("{}")
    with pytest.raises(ModelSourceError, match="cannot load a tokenizer"):
        load_tokenizer(tmp_path)


def test_generation_defaults(tmp_path, save_llama, default_gguf):
    save_llama(tmp_path)
    generation = {
        "temperature": 0.6,
        "top_p": 0.9,
        "top_k": 20,
        "repetition_penalty": 1.05,
        "eos_token_id": [2, 7],
        "do_sample": True,
    }
    (tmp_path / "generation_config.json").write_text(json.dumps(generation))
    assert generation_defaults(tmp_path) == {
        "temperature": 0.6,
        "top_p": 0.9,
        "top_k": 20,
        "repetition_penalty": 1.05,
        "eos_token_ids": [2, 7],
    }
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": 2}))
    assert generation_defaults(tmp_path) == {"eos_token_ids": [2]}
    os.remove(tmp_path / "generation_config.json")
    assert generation_defaults(tmp_path) == {}
    # The embedded model's GGUF has no general.sampling.* keys: its model card's settings.
    assert generation_defaults(default_gguf) == {"temperature": 0.2, "top_p": 0.9}


def test_sampling_defaults_modes(tmp_path, save_llama):
    save_llama(tmp_path)
    generation = {"temperature": 0.6, "top_k": 20, "eos_token_id": 2, "do_sample": True}
    (tmp_path / "generation_config.json").write_text(json.dumps(generation))
    assert sampling_defaults(tmp_path) == {"temperature": 0.6, "top_k": 20}
    assert sampling_defaults(tmp_path, "openai") == {}
    with pytest.raises(ValueError, match="--sampling-defaults"):
        sampling_defaults(tmp_path, "vllm")


def test_gguf_sampling_metadata(tmp_path):
    """llama.cpp's general.sampling.* keys in a GGUF file become the sampling defaults."""
    import gguf
    import numpy as np

    path = str(tmp_path / "tiny.gguf")
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_float32("general.sampling.temp", 0.7)
    writer.add_float32("general.sampling.top_p", 0.8)
    writer.add_int32("general.sampling.top_k", 40)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    defaults = generation_defaults(path)
    assert defaults["top_k"] == 40
    assert abs(defaults["temperature"] - 0.7) < 1e-6 and abs(defaults["top_p"] - 0.8) < 1e-6
