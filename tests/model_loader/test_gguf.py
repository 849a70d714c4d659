"""GGUF weights of the default model against transformers' own GGUF loading.

transformers' `from_pretrained(gguf_file=...)` is the independent path: it dequantizes the
whole file into a dict and loads it into the model. A second check undoes the q/k row order
with llama.cpp's own permutation, written here from its converter, and compares with the raw
dequantized tensors of the file.
"""

import os

import numpy as np
import pytest
import torch
from sglang.model_loader import iterate_weights
from sglang.model_loader.gguf_weights import (
    _tensor_table_gguf_py,
    gguf_float_dtype,
    read_tensor_table,
)


@pytest.fixture(scope="module")
def gguf_state(default_gguf, default_config):
    return dict(iterate_weights(default_gguf, hf_config=default_config.raw, progress=False))


@pytest.fixture(scope="module")
def transformers_state(default_gguf, monkeypatch_module):
    import transformers.modeling_utils
    from transformers import AutoModelForCausalLM

    # from_pretrained refuses GGUF without accelerate, which nothing on this path uses when
    # no device_map is given; the flag only gates that refusal.
    monkeypatch_module.setattr(transformers.modeling_utils, "is_accelerate_available", lambda: True)
    directory, name = os.path.split(default_gguf)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, local_files_only=True)
    return model.state_dict()


@pytest.fixture(scope="module")
def monkeypatch_module():
    patcher = pytest.MonkeyPatch()
    yield patcher
    patcher.undo()


def test_names_shapes_values_match_transformers(gguf_state, transformers_state):
    expected = dict(transformers_state)
    # Tied: the file has no output tensor, transformers' lm_head is the embedding.
    assert torch.equal(expected.pop("lm_head.weight"), expected["model.embed_tokens.weight"])
    assert sorted(gguf_state) == sorted(expected)
    for name, tensor in expected.items():
        assert gguf_state[name].shape == tensor.shape, name
        assert gguf_state[name].dtype == torch.float32
    for name in (
        "model.embed_tokens.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.29.mlp.down_proj.weight",
        "model.norm.weight",
    ):
        assert torch.equal(gguf_state[name], expected[name]), name


def _llama_cpp_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute: HF rotate-half rows -> interleaved pairs."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def test_qk_rows_are_unpermuted(gguf_state, default_gguf, default_config):
    from gguf import GGMLQuantizationType, dequantize

    _, tensors = read_tensor_table(default_gguf)
    raw = {t.name: t for t in tensors}
    heads = {
        "attn_q": default_config.num_attention_heads,
        "attn_k": default_config.num_key_value_heads,
    }
    hf = {"attn_q": "q_proj", "attn_k": "k_proj"}
    for gguf_name, n_head in heads.items():
        t = raw[f"blk.3.{gguf_name}.weight"]
        stored = dequantize(t.read(), GGMLQuantizationType(t.ggml_type))
        ours = gguf_state[f"model.layers.3.self_attn.{hf[gguf_name]}.weight"].numpy()
        assert not np.array_equal(ours, stored)
        assert np.array_equal(_llama_cpp_permute(ours, n_head), stored)


def test_default_model_float_dtype(default_gguf):
    assert gguf_float_dtype(default_gguf) == torch.float32  # Q4_1 blocks


def test_gguf_py_fallback_reads_the_same_tensors(default_gguf):
    from gguf import GGMLQuantizationType, dequantize

    arch, fast = read_tensor_table(default_gguf)
    arch_py, slow = _tensor_table_gguf_py(default_gguf)
    assert arch == arch_py == "llama"
    assert [(t.name, t.ggml_type, t.shape, t.nbytes) for t in fast] == [
        (t.name, t.ggml_type, t.shape, t.nbytes) for t in slow
    ]
    by_name = {t.name: t for t in slow}
    for t in fast:
        if t.name in ("blk.0.attn_q.weight", "blk.0.attn_norm.weight", "output_norm.weight"):
            qtype = GGMLQuantizationType(t.ggml_type)
            ours = dequantize(t.read(), qtype)
            theirs = dequantize(by_name[t.name].read(), qtype)
            assert ours.shape == t.shape and np.array_equal(ours, theirs), t.name
