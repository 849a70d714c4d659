"""iterate_weights over saved tiny checkpoints, and dummy weights."""

import logging
import os

import pytest
import torch
from sglang.model_loader import dummy_weights, iterate_weights, parameter_shapes, resolve_source


def assert_same_state(loaded, expected):
    assert sorted(loaded) == sorted(expected)
    for name, tensor in expected.items():
        assert loaded[name].dtype == tensor.dtype, name
        assert torch.equal(loaded[name], tensor), name


def test_single_safetensors_file(tiny_llama):
    directory, state = tiny_llama
    loaded = dict(iterate_weights(directory, progress=False))
    assert_same_state(loaded, state)


def test_sharded_safetensors(tmp_path, save_llama):
    state = save_llama(tmp_path, seed=1, max_shard_size="40KB")
    source = resolve_source(tmp_path)
    assert os.path.isfile(tmp_path / "model.safetensors.index.json")
    assert len(source.weight_files) > 2
    pairs = list(iterate_weights(source, "safetensors", progress=False))
    assert len(pairs) == len(state)
    assert_same_state(dict(pairs), state)


def test_tied_embeddings_not_invented(tmp_path, save_llama):
    state = save_llama(tmp_path, tie_word_embeddings=True)
    loaded = dict(iterate_weights(tmp_path, progress=False))
    assert "lm_head.weight" not in loaded
    state.pop("lm_head.weight")
    assert_same_state(loaded, state)


def test_pytorch_bin(tmp_path, tiny_llama):
    directory, state = tiny_llama
    (tmp_path / "config.json").write_text(open(os.path.join(directory, "config.json")).read())
    torch.save(state, tmp_path / "pytorch_model.bin")
    source = resolve_source(tmp_path)
    assert source.format == "pt"
    assert_same_state(dict(iterate_weights(source, "pt", progress=False)), state)


def test_load_format_errors(tiny_llama):
    directory, _ = tiny_llama
    with pytest.raises(ValueError, match="holds safetensors"):
        list(iterate_weights(directory, "gguf"))
    with pytest.raises(ValueError, match="dummy_weights"):
        list(iterate_weights(directory, "dummy"))
    with pytest.raises(ValueError, match="unknown load format"):
        list(iterate_weights(directory, "npz"))


def test_progress_bar_and_log_line(tiny_llama, capsys, caplog):
    directory, state = tiny_llama
    with caplog.at_level(logging.INFO, logger="sglang.model_loader.weights"):
        for _ in iterate_weights(directory, progress=True):
            pass
    err = capsys.readouterr().err
    assert "Loading safetensors weights" in err and f"{len(state)}/{len(state)}" in err
    nbytes = sum(t.numel() * t.element_size() for t in state.values())
    assert f"loaded {len(state)} tensors ({nbytes / 2**20:.1f} MiB)" in caplog.text
    for _ in iterate_weights(directory, progress=False):
        pass
    assert capsys.readouterr().err == ""


def test_dummy_weights_shapes_and_values():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        vocab_size=300,
    )
    with torch.device("meta"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    shapes = parameter_shapes(model)
    weights = dict(dummy_weights(shapes, seed=3, progress=False))
    assert list(weights) == list(shapes)
    for name, (shape, dtype) in shapes.items():
        assert tuple(weights[name].shape) == shape and weights[name].dtype == dtype, name
    assert torch.all(weights["model.norm.weight"] == 1)
    assert torch.all(weights["model.layers.0.input_layernorm.weight"] == 1)
    embed = weights["model.embed_tokens.weight"].float()
    assert abs(embed.std().item() - 0.02) < 0.002 and abs(embed.mean().item()) < 0.002
    again = dict(dummy_weights(dict(reversed(list(shapes.items()))), seed=3, progress=False))
    assert all(torch.equal(weights[n], again[n]) for n in shapes)
    other = dict(dummy_weights(shapes, seed=4, progress=False))
    assert not torch.equal(weights["model.embed_tokens.weight"], other["model.embed_tokens.weight"])


def test_dummy_weights_integer_and_fp8():
    shapes = {"qweight": ((4, 8), torch.int32), "w8": ((16, 16), torch.float8_e4m3fn)}
    weights = dict(dummy_weights(shapes, progress=False))
    assert torch.all(weights["qweight"] == 0)
    assert weights["w8"].dtype == torch.float8_e4m3fn and weights["w8"].float().abs().sum() > 0
