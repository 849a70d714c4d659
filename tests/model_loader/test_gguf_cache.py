"""The GGUF config / tokenizer disk cache (sglang.model_loader.gguf_cache): a cached load gives
what transformers builds from the file, and a changed file or a damaged entry misses."""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest
from sglang.model_loader import load_model_config, load_tokenizer
from sglang.model_loader.gguf_cache import ENV, entry_path

TEXTS = ["Hello world, what is 2+2?", "  spaces\tand\nnewlines ", "émigré 東京 🙂", ""]


def _fields(config) -> dict:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name != "raw"}


def test_cached_config_and_tokenizer_equal_the_converted_ones(default_gguf, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "off")
    assert entry_path(default_gguf, "config") is None
    config = load_model_config(default_gguf, preferred="bfloat16")
    tokenizer = load_tokenizer(default_gguf)

    monkeypatch.setenv(ENV, str(tmp_path))
    for _ in range(2):  # the first load fills the cache, the second reads it
        cached_config = load_model_config(default_gguf, preferred="bfloat16")
        cached_tokenizer = load_tokenizer(default_gguf)
        assert os.path.isfile(os.path.join(entry_path(default_gguf, "config"), "config.json"))
        assert os.path.isdir(entry_path(default_gguf, "tokenizer"))
        assert _fields(cached_config) == _fields(config)
        assert cached_config.raw.to_dict() == config.raw.to_dict()
        for text in TEXTS:
            assert cached_tokenizer.encode(text) == tokenizer.encode(text)
        ids = tokenizer.encode(TEXTS[0] + TEXTS[2])
        assert cached_tokenizer.decode(ids) == tokenizer.decode(ids)
        assert cached_tokenizer.chat_template == tokenizer.chat_template
        assert cached_tokenizer.all_special_tokens == tokenizer.all_special_tokens
        assert cached_tokenizer.eos_token_id == tokenizer.eos_token_id
        assert len(cached_tokenizer) == len(tokenizer)


def test_a_changed_file_or_a_damaged_entry_misses(default_gguf, tmp_path, monkeypatch):
    import json

    monkeypatch.setenv(ENV, str(tmp_path / "cache"))
    copy = str(tmp_path / os.path.basename(default_gguf))
    shutil.copyfile(default_gguf, copy)
    first = entry_path(copy, "config")
    load_model_config(copy)
    assert os.path.isdir(first)
    os.utime(copy, ns=(0, 1_000_000_000))
    entry = entry_path(copy, "config")
    assert entry != first and not os.path.exists(entry)  # a new modification time: a new key

    os.makedirs(entry)
    with open(os.path.join(entry, "config.json"), "w") as f:
        f.write("{not json")
    assert load_model_config(copy).vocab_size == 49152  # rebuilt from the file
    with open(os.path.join(entry, "config.json")) as f:
        assert json.load(f)["vocab_size"] == 49152  # and the entry replaced


@pytest.mark.parametrize("value", ["off", "0"])
def test_the_cache_can_be_turned_off(default_gguf, monkeypatch, value):
    monkeypatch.setenv(ENV, value)
    assert entry_path(default_gguf, "tokenizer") is None


def test_cached_tensor_names_equal_the_built_ones(default_gguf, tmp_path, monkeypatch):
    from sglang.model_loader.gguf_weights import gguf_hf_names, read_tensor_table

    monkeypatch.setenv(ENV, str(tmp_path))
    config = load_model_config(default_gguf).raw
    architecture, _ = read_tensor_table(default_gguf)
    _, built = gguf_hf_names(config, architecture)  # no path: built, never cached
    assert "blk.0.attn_q.weight" in built
    for _ in range(2):  # the first call fills the cache, the second reads it
        _, names = gguf_hf_names(config, architecture, default_gguf)
        assert names == built
    assert os.listdir(tmp_path / "gguf" / "names")
