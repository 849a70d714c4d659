"""Bad quantized checkpoints stop the start with one line naming the tensor or format: a missing
scale tensor, a misshapen one, an unknown quant_method, a --quantization that contradicts the
checkpoint, a format the chosen backend cannot run (exit codes of sglang.engine.preflight)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from quant_checkpoints import is_projection, run_logits, save_float_llama, save_quantized
from sglang.engine.preflight import EXIT_DEVICE, EXIT_MODEL, StartupError, preflight
from sglang.layers.quantization.errors import QuantizationError
from sglang.server_args import ServerArgs

FP8 = torch.float8_e4m3fn


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("float"))
    return path, save_float_llama(path)


def block_fp8(path, base, state, drop=None, reshape=None):
    """An FP8 block-32 checkpoint; `drop` leaves a tensor out, `reshape` replaces its shape."""
    tensors = {}
    for name, w in state.items():
        if is_projection(name):
            n, k = w.shape
            tensors[name] = (w / 0.01).clamp(-448, 448).to(FP8)
            tensors[name.replace("weight", "weight_scale_inv")] = torch.full(
                (n // 32, k // 32), 0.01
            )
        else:
            tensors[name] = w
    if drop:
        del tensors[drop]
    if reshape:
        name, shape = reshape
        tensors[name] = torch.ones(shape)
    config = {"quant_method": "fp8", "activation_scheme": "dynamic", "weight_block_size": [32, 32]}
    return save_quantized(path, tensors, config, base=base)


def test_missing_scale_tensor_is_named(tmp_path, float_model):
    missing = "model.layers.1.self_attn.k_proj.weight_scale_inv"
    path = block_fp8(str(tmp_path), *float_model, drop=missing)
    with pytest.raises(QuantizationError, match=f"checkpoint lacks {missing} "):
        run_logits(path, "reference")


def test_misshapen_scale_tensor_is_named(tmp_path, float_model):
    name = "model.layers.0.mlp.down_proj.weight_scale_inv"
    path = block_fp8(str(tmp_path), *float_model, reshape=(name, (4, 4)))
    with pytest.raises(
        QuantizationError, match=rf"{name}: checkpoint shape \(4, 4\), the format needs \(4, 8\)"
    ):
        run_logits(path, "reference")


def test_scale_tensor_in_an_unquantized_checkpoint_is_named(tmp_path, float_model):
    base, state = float_model
    extra = "model.layers.0.self_attn.o_proj.weight_scale"
    path = save_quantized(str(tmp_path), {**state, extra: torch.ones(())}, None, base=base)
    with pytest.raises(QuantizationError, match=f"{extra}: a quantization tensor"):
        run_logits(path, "reference")


def _config(path: str, quantization_config: dict) -> None:
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    cfg["quantization_config"] = quantization_config
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f)


@pytest.mark.parametrize(
    "quantization_config,forced,code,message",
    [
        (
            {"quant_method": "bitsy", "bits": 3},
            None,
            EXIT_MODEL,
            "unknown quant_method 'bitsy' in the checkpoint's quantization_config (known: ",
        ),
        (
            {"quant_method": "fp8", "weight_block_size": [32, 32]},
            "awq",
            EXIT_MODEL,
            "--quantization awq does not match the checkpoint's quant_method 'fp8'",
        ),
        ({"quant_method": "gptq", "bits": 3}, None, EXIT_MODEL, "gptq with bits=3"),
        (
            None,
            "gptq",
            EXIT_MODEL,
            "--quantization gptq serves gptq checkpoints, and this checkpoint is not quantized",
        ),
    ],
)
def test_preflight_refuses_bad_declarations(
    tmp_path, float_model, quantization_config, forced, code, message
):
    base, state = float_model
    path = save_quantized(str(tmp_path), state, quantization_config, base=base)
    args = ServerArgs.from_kwargs(model_path=path, device="reference", quantization=forced)
    with pytest.raises(StartupError) as err:
        preflight(args)
    assert err.value.exit_code == code
    assert message in str(err.value) and "\n" not in str(err.value)


def test_format_the_backend_lacks_names_the_backends_that_can():
    from sglang.layers.quantization.registry import check_backend, resolve_quantization

    config = resolve_quantization({"quant_method": "gptq", "bits": 4, "desc_act": True}, None)
    columns = {
        "reference": frozenset({"int4:gptq", "int4:gptq_act_order"}),
        "vendor": frozenset({"int4:gptq"}),
        "broken": None,
    }
    with pytest.raises(QuantizationError) as err:
        check_backend(config, "vendor", columns["vendor"], columns)
    assert str(err.value) == (
        "gptq (4-bit, group 128, act-order) checkpoints need int4:gptq_act_order, which backend "
        "'vendor' does not have; backends that can run them: reference"
    )


def test_example_backend_refuses_fp8_at_startup(tmp_path, float_model, example_backend):
    if not example_backend:
        pytest.skip("the example vendor backend (acme) is not installed")
    path = block_fp8(str(tmp_path), *float_model)
    args = ServerArgs.from_kwargs(model_path=path, device="acme")
    with pytest.raises(StartupError) as err:
        preflight(args)
    assert err.value.exit_code == EXIT_DEVICE
    assert "fp8 (block 32x32) checkpoints need fp8:e4m3fn, which backend 'acme'" in str(err.value)
    assert "reference" in str(err.value).rpartition("can run them: ")[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_prints_one_line_and_exits_4_on_a_missing_scale(tmp_path, float_model):
    missing = "model.layers.0.mlp.up_proj.weight_scale_inv"
    path = block_fp8(str(tmp_path), *float_model, drop=missing)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sglang.cli.main",
            "serve",
            "--model-path",
            path,
            "--device",
            "reference",
            "--port",
            str(_free_port()),
            "--max-total-tokens",
            "256",
            "--skip-tokenizer-init",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert proc.returncode == EXIT_MODEL, proc.stdout + proc.stderr
    assert len(errors) == 1 and f"checkpoint lacks {missing}" in errors[0]
    assert not any("Traceback" in ln for ln in lines)


def test_gguf_file_refuses_a_checkpoint_method(default_gguf_path):
    args = ServerArgs.from_kwargs(
        model_path=default_gguf_path, device="reference", quantization="awq"
    )
    with pytest.raises(StartupError) as err:
        preflight(args)
    assert err.value.exit_code == EXIT_MODEL
    assert "--quantization awq does not apply to a GGUF file" in str(err.value)


@pytest.fixture(scope="module")
def default_gguf_path():
    from sglang.model_loader import default_model_path

    return default_model_path()
