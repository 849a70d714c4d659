"""GGUF files served on their own codes (sglang.layers.quantization.gguf): tiny llama
files of each block type (tiny_gguf.py) against transformers, which dequantizes the same file
with gguf-py and runs it densely in float32, and the default model's layers and memory."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from sglang.backend.selection import select_platform  # noqa: E402
from sglang.engine.scheduler_process import build_scheduler  # noqa: E402
from sglang.engine.settings import resolve  # noqa: E402
from sglang.layers.linear import Linear  # noqa: E402
from sglang.layers.quantization.gguf import plan_quantization  # noqa: E402
from sglang.model_executor.model_runner import ModelRunner  # noqa: E402
from sglang.model_loader import load_model_config, resolve_source  # noqa: E402
from sglang.sampling.params import SamplingParams  # noqa: E402
from sglang.scheduler.req import Req  # noqa: E402
from sglang.server_args import ServerArgs  # noqa: E402
from tiny_gguf import write_tiny_gguf  # noqa: E402

PROMPT = [1, 17, 33, 250, 99, 7, 212, 5, 64, 128, 3, 301]
NEW = 8
FOUR_BIT = {"Q4_0", "Q4_1", "Q4_K"}
KINDS = ["Q4_0", "Q4_1", "Q4_K", "Q5_0", "Q5_1", "Q5_K", "Q6_K", "Q8_0", "Q4_K_M"]
# (backend, dtype, bound on |logprob - transformers'| (mean, max)): float32 computes what the
# dequantized model does up to float32 sums; bfloat16 rounds activations at every layer.
RUNS = [
    ("reference", "float32", 1e-4, 1e-3),
    ("xeon", "float32", 1e-4, 1e-3),
    ("xeon", "bfloat16", 0.03, 0.1),
]
TIE = 0.05  # a greedy step whose top two logits (transformers') are closer is a near-tie


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gguf")
    return {kind: _write(directory, kind) for kind in KINDS}


def _write(directory, kind):
    path = str(directory / f"tiny-{kind}.gguf")
    write_tiny_gguf(path, kind)
    return path


@pytest.fixture(scope="module")
def hf_models(files):
    import transformers.modeling_utils
    from transformers import AutoModelForCausalLM

    patcher = pytest.MonkeyPatch()
    # from_pretrained refuses GGUF without accelerate, which this path never uses.
    patcher.setattr(transformers.modeling_utils, "is_accelerate_available", lambda: True)
    models = {}
    for kind, path in files.items():
        directory, name = os.path.split(path)
        models[kind] = AutoModelForCausalLM.from_pretrained(
            directory, gguf_file=name, local_files_only=True, dtype=torch.float32
        ).eval()
    patcher.undo()
    return models


def _serve(path, backend, dtype):
    args = ServerArgs.from_kwargs(
        model_path=path,
        device=backend,
        dtype=dtype,
        skip_tokenizer_init=True,
        max_total_tokens=256,
        disable_radix_cache=True,
        log_level="warning",
    )
    scheduler, _ = build_scheduler(args)
    params = SamplingParams.from_dict(
        {"max_new_tokens": NEW, "temperature": 0.0, "ignore_eos": True}
    )
    req = Req("r", PROMPT, params, frozenset(), return_logprob=True, logprob_start_len=0)
    assert scheduler.add_request(req) is None
    while scheduler.has_work():
        scheduler.step()
    return scheduler.runner, req


@pytest.mark.parametrize("kind", KINDS)
def test_tiny_gguf_served_on_its_codes(kind, files, hf_models):
    model = hf_models[kind]
    # The linear layers' tensors (the head is the tied embedding), not the float norms.
    file_bytes = sum(t.nbytes for t in _tensors(files[kind]) if len(t.shape) == 2)
    for backend, dtype, mean_bound, max_bound in RUNS:
        runner, req = _serve(files[kind], backend, dtype)
        ops = Counter(m.gemm_op for m in runner.model.modules() if isinstance(m, Linear))
        assert runner.quantization == "gguf" and "gemm.dense" not in ops, ops
        # 4-bit layers: gemm.int4, or gemm.w4a8 (int8 activations) where the backend declares
        # it and the serving dtype is bfloat16 (xeon)
        int4 = "gemm.w4a8" if (backend, dtype) == ("xeon", "bfloat16") else "gemm.int4"
        if kind in FOUR_BIT:  # the tied head too: the embedding is of the same type
            assert ops == {int4: 9}, ops
        elif kind != "Q4_K_M":
            assert ops == {"gemm.w8a16": 9}, ops
        else:  # q/k Q4_K with v Q6_K: int8; gate/up Q4_K: int4; down Q6_K, head Q8_0: int8
            assert ops == {int4: 4, "gemm.w8a16": 5}, ops
        # The linear layers hold the codes, not a float copy (bfloat16 would be 3.5x a 4-bit
        # file): 4 or 8 bits a weight plus a scale (and zero) per group. xeon in float32
        # keeps a dense copy beside int4 (its int4 kernels serve bfloat16 activations).
        if (backend, dtype) != ("xeon", "float32"):
            ratio = _linear_bytes(runner.model) / file_bytes
            assert ratio < (1.4 if kind in FOUR_BIT else 2.0), (backend, dtype, ratio)

        ids = PROMPT + req.output_ids
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        ref = torch.log_softmax(logits, -1)
        expected = torch.tensor([float(ref[i - 1, PROMPT[i]]) for i in range(1, len(PROMPT))])
        got = torch.tensor([lp for lp in req.prompt_logprobs[1:]], dtype=torch.float64)
        diff = (got - expected).abs()
        where = f"{kind} {backend} {dtype}"
        assert float(diff.mean()) < mean_bound and float(diff.max()) < max_bound, (where, diff)
        # Greedy: each token is transformers' argmax, unless its top two are a near-tie.
        for step, token in enumerate(req.output_ids):
            row = logits[len(PROMPT) - 1 + step]
            top2 = row.topk(2).values
            if float(top2[0] - top2[1]) > TIE:
                assert token == int(row.argmax()), (where, step)


def _linear_bytes(model) -> int:
    held = {}
    for layer in model.modules():
        if isinstance(layer, Linear):
            for t in layer.prepared_tensors():
                held[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(held.values())


def _tensors(path):
    from sglang.model_loader.gguf_weights import read_tensor_table

    return read_tensor_table(path)[1]


def test_plan_without_gguf_codes_is_dense():
    model = torch.nn.Linear(4, 4)
    assert plan_quantization(None, model, None).method is None
    assert plan_quantization("int4", model, None).method == "int4"
    plan = plan_quantization(None, model, {"weight": "Q8_0", "bias": "F32"}, {})
    assert plan.method is None and not plan.layer_args


def _runner(default_gguf, **kw) -> ModelRunner:
    args = ServerArgs(device="xeon", max_total_tokens=256, disable_cuda_graph=True, **kw)
    platform = select_platform("xeon")
    args = resolve(args, platform.backend.server_defaults(total_memory_bytes=1 << 34))
    source = resolve_source(default_gguf)
    config = load_model_config(source, "bfloat16")
    return ModelRunner(args, platform, config, source)


def test_default_gguf_is_served_on_its_codes(default_gguf):
    runner = _runner(default_gguf)
    assert runner.quantization == "gguf"
    layers = {n: m for n, m in runner.model.named_modules() if isinstance(m, Linear)}
    by_op = {name: layer.gemm_op for name, layer in layers.items()}
    # Every decoder projection was Q4_1 in the file: 4-bit, with int8 activations per block
    # of 32 as llama.cpp runs the file (gemm.w4a8, xeon's default dtype bfloat16); the head
    # (tied to the Q8_0 embedding) int8 on the embedding's codes: never fewer bits than the
    # file has.
    assert by_op.pop("lm_head") == "gemm.w8a16"
    assert set(by_op.values()) == {"gemm.w4a8"} and len(by_op) == 30 * 4
    assert all(layer.weight is None for name, layer in layers.items() if name != "lm_head")
    # 98 MB on disk; the float weights in bfloat16 would be 270 MB.
    assert runner.weight_bytes < 1.6 * os.path.getsize(default_gguf)


def test_explicit_int4_quantizes_every_layer(default_gguf):
    runner = _runner(default_gguf, quantization="int4")
    ops = {m.gemm_op for m in runner.model.modules() if isinstance(m, Linear)}
    assert ops == {"gemm.int4"}
