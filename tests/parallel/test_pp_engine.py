"""--pp-size 2 through the Engine: rank 0 (stage 0: the embedding and layer 0) schedules and
broadcasts the plan, rank 1 (stage 1: layer 1, the norm and the LM head) receives the hidden
states and residual, and its logits come back to rank 0 to sample. Greedy tokens equal
transformers' (and so one process's) for a batch of prompts, with prefill chunks and the
prefix cache in play; PP=2 x TP=2 x EP=2 (four ranks, a MoE model) too. The startup info says which layers
each stage holds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))

from tiny_models import hf_greedy, save_tiny_model  # noqa: E402

PROMPTS = [[1, 17, 33, 250, 99, 7, 41, 5], [1, 17, 33, 250, 99, 300, 2, 8, 61], [1, 5, 9]]
MAX_NEW = 8


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_tiny_model("llama", str(tmp_path_factory.mktemp("llama")))


def run(model, **parallel):
    from sglang import Engine

    with Engine(
        model_path=model,
        device="xeon",
        dtype="float32",
        skip_tokenizer_init=True,
        max_total_tokens=512,
        chunked_prefill_size=4,  # several prefill forwards per prompt
        log_level="warning",
        **parallel,
    ) as engine:
        layout = engine.server_info["parallel"]
        outs = engine.generate(
            input_ids=PROMPTS,
            sampling_params={"max_new_tokens": MAX_NEW, "temperature": 0, "ignore_eos": True},
        )
    return layout, [out["output_ids"] for out in outs]


def test_pp2_engine_greedy_equals_transformers(model):
    layout, outs = run(model, pp_size=2)
    assert (layout["pp_size"], layout["layers"]) == (2, "0 of 2")
    assert "vocab_rows" in layout  # stage 0 holds the embedding
    for prompt, out in zip(PROMPTS, outs):
        assert out == hf_greedy(model, prompt, MAX_NEW)


def test_pp2_tp2_ep2_tied_moe_engine_greedy_equals_transformers(tmp_path):
    """Four ranks, every kind of split at once: a Mixtral with a tied head; stage 1 keeps its
    own copy of the embedding for the head; each stage's two TP ranks split the KV heads and
    the vocabulary, and hold two of the four experts each (EP=2)."""
    tied = save_tiny_model("mixtral", str(tmp_path / "tied"), tie_word_embeddings=True)
    layout, outs = run(tied, pp_size=2, tp_size=2, ep_size=2)
    assert (layout["ranks"], layout["layers"], layout["kv_heads"]) == (4, "0 of 2", "0 of 2")
    assert layout["experts"] == "0-1 of 4"
    for prompt, out in zip(PROMPTS, outs):
        assert out == hf_greedy(tied, prompt, MAX_NEW)


def test_stage_layers_and_skipped_weights():
    from sglang.parallel.pipeline import Stage, skipped_weight, stage_layers
    from sglang.parallel.state import GroupInfo

    assert [stage_layers(7, s, 3) for s in range(3)] == [range(0, 3), range(3, 5), range(5, 7)]
    assert [stage_layers(4, s, 2) for s in range(2)] == [range(0, 2), range(2, 4)]
    with pytest.raises(ValueError, match="2 layers, fewer than the stages"):
        stage_layers(2, 0, 3)
    first, last = Stage(GroupInfo(0, 2), 4), Stage(GroupInfo(1, 2), 4)
    names = (
        "model.embed_tokens.weight",
        "model.layers.1.mlp.up_proj.weight",
        "model.layers.2.self_attn.q_proj.weight",
        "model.norm.weight",
        "lm_head.weight",
    )
    assert [skipped_weight(n, first, True) for n in names] == [False, False, True, True, True]
    assert [skipped_weight(n, last, False) for n in names] == [True, True, False, False, False]
    assert [skipped_weight(n, last, True) for n in names][0] is False  # a tied head's copy


def test_pp2_gemma2_engine_greedy_equals_transformers(tmp_path):
    """Gemma 2: the embedding's normalizer on stage 0, its offset norm and the tied head (with
    its final soft-cap) on stage 1."""
    gemma = save_tiny_model("gemma2", str(tmp_path / "gemma2"))
    layout, outs = run(gemma, pp_size=2)
    assert layout["layers"] == "0 of 2"
    for prompt, out in zip(PROMPTS, outs):
        assert out == hf_greedy(gemma, prompt, MAX_NEW)


def test_a_model_without_pipeline_support_refuses_pp():
    import torch
    import transformers as tf
    from sglang.backend.selection import select_platform
    from sglang.layers.ops_table import OpTable
    from sglang.parallel.state import GroupInfo, ParallelState
    from sglang_models.llama import LlamaModel
    from tiny_models import COMMON

    class OwnForward(LlamaModel):
        supports_pipeline = False

    ops = OpTable(select_platform("reference"))
    ops.parallel = ParallelState(pp=GroupInfo(1, 2))
    with pytest.raises(ValueError, match="OwnForward: --pp-size > 1 is not served"):
        OwnForward(tf.LlamaConfig(**COMMON), ops, torch.float32, torch.device("cpu"))


def test_more_stages_than_layers_refused_in_one_line(model):
    from sglang import Engine
    from sglang.engine.preflight import StartupError

    with pytest.raises(StartupError, match="--pp-size 3: the model has 2 decoder layers") as e:
        Engine(model_path=model, device="xeon", pp_size=3, skip_tokenizer_init=True)
    assert "\n" not in str(e.value)


def test_micro_batches_cut_by_requests():
    """Three requests (2, 3 and 1 new tokens after 0, 4 and 2 cached ones) in two micro-batches:
    each part's tensors are its requests' slices with the indptrs rebased, and the logits rows
    (in an order that interleaves the parts) come back in the batch's order."""
    import torch
    from sglang.forward_batch import ForwardBatch, ForwardMode
    from sglang.parallel.pipeline import micro_batches

    i64 = dict(dtype=torch.int64)
    qo, kv = torch.tensor([0, 2, 5, 6], **i64), torch.tensor([0, 2, 9, 12], **i64)
    batch = ForwardBatch(
        ForwardMode.EXTEND, 3, torch.arange(100, 106), torch.tensor([0, 1, 4, 5, 6, 2]),
        torch.arange(20, 26), qo, kv, torch.arange(50, 62),
        torch.tensor([5, 0, 1, 4], **i64), kv_cache=None,
    )  # fmt: skip
    parts, order = micro_batches(batch, 2)
    assert [p.batch_size for p in parts] == [1, 2]
    a, b = parts
    assert a.input_ids.tolist() == [100, 101] and b.input_ids.tolist() == [102, 103, 104, 105]
    assert b.qo_indptr.tolist() == [0, 3, 4] and b.kv_indptr.tolist() == [0, 7, 10]
    assert b.kv_indices.tolist() == list(range(52, 62))
    assert b.out_cache_loc.tolist() == [22, 23, 24, 25]
    assert a.logits_indices.tolist() == [0, 1] and b.logits_indices.tolist() == [3, 2]
    rows = torch.cat([p.logits_indices + off for p, off in zip(parts, (0, 2))])
    assert torch.empty_like(rows).index_copy_(0, order, rows).tolist() == [5, 0, 1, 4]
    assert micro_batches(batch, 1) == ([batch], None)
