"""A server on a quantized model says so: the startup log has one line per layer type with its
method and kernel, and /get_server_info carries the method (`quantization`), the same map
(`quantization_layers`) and `kv_cache_dtype`, as SGLang's server info names them."""

from __future__ import annotations

import os

import httpx
import pytest
import torch
from server_process import ServerProcess

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import transformers as tf

    path = str(tmp_path_factory.mktemp("tiny"))
    torch.manual_seed(0)
    config = tf.LlamaConfig(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    tf.LlamaForCausalLM(config).save_pretrained(path)
    proc = ServerProcess(
        "--model-path",
        path,
        "--skip-tokenizer-init",
        "--quantization",
        "fp8",
        "--max-total-tokens",
        "512",
        "--log-level",
        "info",
    )
    yield proc
    proc.stop()


def test_server_info_and_log_name_each_layer_types_method(server):
    info = httpx.get(server.base_url + "/get_server_info", timeout=30).json()
    assert info["quantization"] == "fp8" and info["kv_cache_dtype"] == "auto"
    layers = info["quantization_layers"]
    assert set(layers) == {
        "self_attn.qkv_proj",
        "self_attn.o_proj",
        "mlp.gate_up_proj",
        "mlp.down_proj",
        "lm_head",
    }
    assert layers["mlp.down_proj"].startswith("fp8 (load-time, per-channel) via gemm.fp8 (xeon.")
    assert layers["lm_head"].startswith("dense via gemm.dense")
    line = next(ln for ln in server.output().splitlines() if "quantization fp8" in ln)
    assert "self_attn.qkv_proj = fp8 (load-time, per-channel) via gemm.fp8" in line
    out = httpx.post(
        server.base_url + "/generate",
        json={
            "input_ids": [1, 5, 9, 13],
            "sampling_params": {"max_new_tokens": 4, "temperature": 0},
        },
        timeout=60,
    ).json()
    assert len(out["output_ids"]) == 4
