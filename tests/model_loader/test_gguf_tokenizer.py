"""The GGUF tokenizer (sglang.model_loader.gguf_tokenizer): converted without transformers'
legacy metadata parse, and loaded from the disk cache, it tokenizes, decodes and renders the chat
template exactly as a fresh `AutoTokenizer.from_pretrained(..., gguf_file=...)` does; stale or
damaged cache entries are rebuilt; processes starting together build an entry once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from sglang.model_loader import load_tokenizer
from sglang.model_loader.gguf_cache import ENV, entry_path
from sglang.model_loader.gguf_tokenizer import RECORD

TEXTS = [
    "Hello world, what is 2+2?",
    "  leading spaces\tand\ttabs\nand\n\nnewlines  ",
    "émigré 東京 🙂 naïve café ﬁ",
    "",
    " ",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>text after the end<|endoftext|>",
    "<|im_start|><|im_end|><|im_start|>",  # special tokens back to back
    "def f(x):\n    return x ** 2  # squares\n",
    "1234567890 3.14159 -42 1e-9",
    "<|im_start|",  # a special token's prefix only
    "The capital of France is",
]
CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of Japan?"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "émigré 東京?"},
    ],
]


@pytest.fixture(scope="module")
def reference(default_gguf):
    """transformers' own conversion, as it comes (its legacy reader picks the class)."""
    import transformers.modeling_gguf_pytorch_utils as legacy
    from transformers import AutoTokenizer

    assert legacy.load_gguf_checkpoint.__module__ == legacy.__name__  # the original
    directory, name = os.path.split(default_gguf)
    return AutoTokenizer.from_pretrained(directory, gguf_file=name, local_files_only=True)


def assert_same(tokenizer, reference) -> None:
    assert type(tokenizer) is type(reference)
    assert len(tokenizer) == len(reference)
    assert tokenizer.get_vocab() == reference.get_vocab()
    assert str(tokenizer.added_tokens_decoder) == str(reference.added_tokens_decoder)
    assert tokenizer.special_tokens_map == reference.special_tokens_map
    assert tokenizer.all_special_ids == reference.all_special_ids
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        assert getattr(tokenizer, name) == getattr(reference, name), name
    assert tokenizer.chat_template == reference.chat_template
    for text in TEXTS:
        for special in (True, False):
            ids = reference.encode(text, add_special_tokens=special)
            assert tokenizer.encode(text, add_special_tokens=special) == ids, text
            for skip in (True, False):
                expected = reference.decode(ids, skip_special_tokens=skip)
                assert tokenizer.decode(ids, skip_special_tokens=skip) == expected
        assert tokenizer.tokenize(text) == reference.tokenize(text)
    everything = list(range(len(reference)))
    assert tokenizer.convert_ids_to_tokens(everything) == reference.convert_ids_to_tokens(
        everything
    )
    assert tokenizer.batch_decode([[i] for i in everything]) == reference.batch_decode(
        [[i] for i in everything]
    )
    for messages in CONVERSATIONS:
        for prompt in (True, False):
            kw = {"add_generation_prompt": prompt}
            text = reference.apply_chat_template(messages, tokenize=False, **kw)
            assert tokenizer.apply_chat_template(messages, tokenize=False, **kw) == text
            assert tokenizer.encode(text, add_special_tokens=False) == reference.encode(
                text, add_special_tokens=False
            )


def test_conversion_and_cache_match_transformers(default_gguf, reference, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "off")
    assert_same(load_tokenizer(default_gguf), reference)  # converted, no cache

    monkeypatch.setenv(ENV, str(tmp_path))
    for _ in range(2):  # the first load converts and fills the cache, the second reads it
        assert_same(load_tokenizer(default_gguf), reference)
        entry = entry_path(default_gguf, "tokenizer")
        assert os.path.isfile(os.path.join(entry, RECORD))


def test_the_legacy_config_answer_equals_the_legacy_reader(default_gguf):
    import transformers.modeling_gguf_pytorch_utils as legacy
    from sglang.model_loader.gguf_config import legacy_config_answered

    original = legacy.load_gguf_checkpoint
    expected = original(default_gguf, return_tensors=False)["config"]
    with legacy_config_answered(default_gguf):
        assert legacy.load_gguf_checkpoint is not original
        assert legacy.load_gguf_checkpoint(default_gguf, return_tensors=False) == {
            "config": expected
        }
    assert legacy.load_gguf_checkpoint is original


def _damage_record(entry: str, **changes) -> None:
    path = os.path.join(entry, RECORD)
    with open(path) as f:
        record = json.load(f)
    record.update(changes)
    with open(path, "w") as f:
        json.dump(record, f)


def _garbage_tokenizer(entry: str) -> None:
    with open(os.path.join(entry, "tokenizer.json"), "w") as f:
        f.write('{"version": "1.0", "model": {"type": "BPE", "vocab": {')


def _no_record(entry: str) -> None:
    os.remove(os.path.join(entry, RECORD))


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: _damage_record(e, metadata="another file's"),  # stale: the file changed
        lambda e: _damage_record(e, length=100),  # a tokenizer that is not the one recorded
        lambda e: _damage_record(e, eos_token_id=7),
        _garbage_tokenizer,  # a half-written or damaged file
        _no_record,  # an entry from before the record
    ],
    ids=["stale-metadata", "length", "eos", "garbage", "no-record"],
)
def test_stale_or_damaged_entries_are_rebuilt(
    default_gguf, reference, tmp_path, monkeypatch, damage
):
    monkeypatch.setenv(ENV, str(tmp_path))
    load_tokenizer(default_gguf)
    entry = entry_path(default_gguf, "tokenizer")
    damage(entry)
    tokenizer = load_tokenizer(default_gguf)  # rebuilt, never an error
    assert tokenizer.encode(TEXTS[5]) == reference.encode(TEXTS[5])
    assert len(tokenizer) == len(reference)
    with open(os.path.join(entry, RECORD)) as f:  # and the entry written again
        assert json.load(f)["length"] == len(reference)
    assert load_tokenizer(default_gguf).eos_token_id == reference.eos_token_id


BUILDER = textwrap.dedent(
    """
    import os, sys, time
    from sglang.model_loader.gguf_cache import cached

    path, log, go = sys.argv[1:4]

    class Value:
        def __init__(self, text):
            self.text = text

        def save_pretrained(self, directory):
            with open(os.path.join(directory, "value.txt"), "w") as f:
                f.write(self.text)

    def build():
        with open(log, "a") as f:
            f.write(f"build {os.getpid()}\\n")
        time.sleep(1.0)  # long enough for the other process to find the entry missing
        return Value("built")

    def load(entry):
        with open(os.path.join(entry, "value.txt")) as f:
            return Value(f.read())

    while not os.path.exists(go):  # start together
        time.sleep(0.005)
    print(cached(path, "test-entry", build, load).text)
    """
)


def test_processes_starting_together_build_once(default_gguf, tmp_path):
    env = {**os.environ, ENV: str(tmp_path / "cache")}
    log, go = str(tmp_path / "builds.log"), str(tmp_path / "go")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILDER, default_gguf, log, go],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(3)
    ]
    open(go, "w").close()
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert outputs == ["built"] * 3
    with open(log) as f:
        assert len(f.read().splitlines()) == 1  # one build; the others waited and loaded it
