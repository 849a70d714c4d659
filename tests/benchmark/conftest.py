"""Fixtures: the default model's tokenizer (converted from the GGUF once per session and saved
as tokenizer.json, which loads in a fraction of a second), and a word-level fake tokenizer whose
token counts are plain word counts, for checking the dataset filters independently."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> str:
    from sglang.model_loader import DefaultModelMissing, default_model_path, load_tokenizer

    try:
        path = default_model_path()
    except DefaultModelMissing as e:
        pytest.skip(str(e))
    directory = tmp_path_factory.mktemp("tokenizer")
    load_tokenizer(path).save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    from sglang.model_loader import load_tokenizer

    return load_tokenizer(tokenizer_dir)


class WordTokenizer:
    """Token i is the i-th distinct word seen; text is words joined by spaces."""

    bos_token = None
    all_special_ids: list[int] = []

    def __init__(self, vocab_size: int = 1000) -> None:
        self.vocab_size = vocab_size
        self.words = [f"w{i}" for i in range(vocab_size)]
        self.ids = {w: i for i, w in enumerate(self.words)}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        for w in text.split():
            if w not in self.ids:
                self.ids[w] = len(self.words)
                self.words.append(w)
        return [self.ids[w] for w in text.split()]

    def __call__(self, texts: list[str]) -> dict[str, list[list[int]]]:
        return {"input_ids": [self.encode(t) for t in texts]}

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.words[i] for i in ids)

    def get_vocab(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words[: self.vocab_size])}

    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False) -> str:
        return f"USER {messages[0]['content']} ASSISTANT"


@pytest.fixture
def word_tokenizer() -> WordTokenizer:
    return WordTokenizer()


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> str:
    """A directory holding only the config.json of tests/engine/tiny_models.py's tiny Llama."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "engine" / "tiny_models.py"
    spec = importlib.util.spec_from_file_location("_bench_tiny_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    directory = tmp_path_factory.mktemp("tiny-llama")
    module.configs()["llama"].save_pretrained(directory)
    return str(directory)
