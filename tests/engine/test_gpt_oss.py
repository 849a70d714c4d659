"""gpt-oss checkpoints beyond the float32 parity test (test_parity.py): a bfloat16 checkpoint,
and the MXFP4 layout the released models ship (experts as <proj>_blocks / <proj>_scales),
whose greedy tokens and prompt logprobs must be those of transformers' float model holding the
experts as transformers' own MXFP4 reader (`_convert_moe_packed_tensors`) dequantizes them."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file
from sglang.engine.engine import Engine
from sglang.ops.quant.fp4 import quantize_mxfp4
from tiny_models import greedy_continuation, save_tiny_model

PROMPTS = [[1, 17, 33, 250, 99, 7, 412, 5], [1, 300, 301, 302]]
MAX_NEW = 24
NOT_CONVERTED = [
    "model.layers.*.self_attn",
    "model.layers.*.mlp.router",
    "model.embed_tokens",
    "lm_head",
]


def _hf(path: str):
    import transformers as tf

    return tf.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def _engine_matches(path: str, backend: str, model, experts: str | None = None) -> None:
    """`experts`: how the server info must say the routed experts are held."""
    with Engine(
        model_path=path,
        device=backend,
        dtype="float32",
        skip_tokenizer_init=True,
        max_total_tokens=1024,
        log_level="warning",
    ) as engine:
        if experts is not None:
            assert engine.server_info["quantization_layers"]["mlp.experts"].startswith(experts)
        for prompt in PROMPTS:
            out = engine.generate(
                input_ids=prompt,
                sampling_params={"max_new_tokens": MAX_NEW, "temperature": 0, "ignore_eos": True},
                return_logprob=True,
                logprob_start_len=0,
            )
            assert out["output_ids"] == greedy_continuation(model, prompt, MAX_NEW)
            with torch.no_grad():
                logits = model(torch.tensor([prompt])).logits[0].float()
            ref = torch.log_softmax(logits, -1)
            want = [float(ref[i - 1, prompt[i]]) for i in range(1, len(prompt))]
            got = [lp for lp, _, _ in out["meta_info"]["input_token_logprobs"]][1:]
            assert got == pytest.approx(want, abs=2e-4, rel=1e-4)


def _quantize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[E, N, K] float -> gpt-oss blocks uint8 [E, N, K/32, 16] and scales uint8 [E, N, K/32]."""
    pairs = [quantize_mxfp4(we) for we in w]
    blocks = torch.stack([p for p, _ in pairs])
    return blocks.reshape(*blocks.shape[:2], -1, 16), torch.stack([s for _, s in pairs])


def save_mxfp4(float_path: str, path: str) -> None:
    """The tiny float gpt-oss rewritten as an MXFP4 checkpoint (experts only)."""
    os.makedirs(path, exist_ok=True)
    tensors = {}
    for name, t in load_file(os.path.join(float_path, "model.safetensors")).items():
        if name.endswith(("experts.gate_up_proj", "experts.down_proj")):
            # [E, K, N] (x @ w) -> the blocks' [E, N, K] orientation
            tensors[f"{name}_blocks"], tensors[f"{name}_scales"] = _quantize(t.transpose(1, 2))
        else:
            tensors[name] = t
    save_file(tensors, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    config = json.load(open(os.path.join(float_path, "config.json")))
    config["quantization_config"] = {
        "quant_method": "mxfp4",
        "modules_to_not_convert": NOT_CONVERTED,
    }
    json.dump(config, open(os.path.join(path, "config.json"), "w"))


def dequantized_by_transformers(float_path: str, path: str):
    """transformers' float gpt-oss with the MXFP4 checkpoint's experts, dequantized by
    transformers' own gpt-oss MXFP4 reader."""
    mxfp4 = pytest.importorskip("transformers.integrations.mxfp4")
    model = _hf(float_path)
    tensors = load_file(os.path.join(path, "model.safetensors"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("experts.gate_up_proj", "experts.down_proj")):
                w = mxfp4._convert_moe_packed_tensors(
                    tensors[f"{name}_blocks"], tensors[f"{name}_scales"], dtype=torch.float32
                )
                assert not torch.equal(w, p), "quantization changed nothing: a weak test"
                p.copy_(w)
    return model


@pytest.fixture(scope="module")
def float_path(tmp_path_factory):
    return save_tiny_model("gpt-oss", str(tmp_path_factory.mktemp("gpt-oss")))


@pytest.fixture(scope="module")
def mxfp4_path(float_path, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("gpt-oss-mxfp4"))
    save_mxfp4(float_path, path)
    return path


def _available(backend: str) -> bool:
    from sglang.backend.discovery import discover

    found = discover().backends.get(backend)
    return found is not None and found.available


# cuda: its Triton attention (sinks) and fused MoE (swigluoai, biases), on a GPU
CUDA = pytest.param("cuda", marks=pytest.mark.skipif(not _available("cuda"), reason="no GPU"))


@pytest.mark.parametrize("backend", ["reference", "xeon", CUDA])
def test_mxfp4_checkpoint_matches_transformers_on_dequantized_experts(
    float_path, mxfp4_path, backend
):
    # The experts stay MXFP4 in memory (moe.experts with moe:mxfp4 on every backend here).
    kept = "mxfp4 (kept) via moe.experts"
    _engine_matches(
        mxfp4_path, backend, dequantized_by_transformers(float_path, mxfp4_path), experts=kept
    )


@pytest.mark.parametrize("backend", ["xeon", CUDA])
def test_bfloat16_checkpoint_matches_transformers(float_path, tmp_path, backend):
    _hf(float_path).to(torch.bfloat16).save_pretrained(str(tmp_path))
    assert json.load(open(tmp_path / "config.json"))["dtype"] == "bfloat16"
    _engine_matches(str(tmp_path), backend, _hf(str(tmp_path)))


def test_mxfp4_checkpoint_missing_scales_fails_at_startup_naming_it(mxfp4_path, tmp_path):
    tensors = load_file(os.path.join(mxfp4_path, "model.safetensors"))
    missing = "model.layers.1.mlp.experts.down_proj_scales"
    del tensors[missing]
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(mxfp4_path, "config.json")) as src:
        (tmp_path / "config.json").write_text(src.read())
    with pytest.raises(Exception, match=missing):
        Engine(
            model_path=str(tmp_path),
            device="reference",
            dtype="float32",
            skip_tokenizer_init=True,
            max_total_tokens=256,
            log_level="warning",
        )
