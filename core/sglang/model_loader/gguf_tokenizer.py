"""A GGUF file's tokenizer: transformers' own conversion, made once per file and shared.

`AutoTokenizer.from_pretrained(dir, gguf_file=...)` converts the file's vocabulary, merges and
special tokens into a fast tokenizer (0.4 s of CPU for SmolLM2's 49,152 tokens), but first
parses every metadata field with transformers' legacy reader only to pick the tokenizer class
from the config (4 s). `convert` runs the same call with that config answered from the fast
header reader (gguf_config.legacy_config_answered: the dict the legacy reader gives, tested
equal), so the tokenizer is transformers' own, built in a tenth of the time.

The converted tokenizer is kept in the disk cache (gguf_cache: keyed by the file's path, size
and mtime; built once under a lock when the frontend and the scheduler start together). An
entry also records a fingerprint of the file's `tokenizer.*` metadata (the arrays as their
lengths, the rest as values) and the converted tokenizer's length and special-token ids; one
whose record is missing or differs from the file and from what it loads is stale, and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

RECORD = "sglang_gguf_tokenizer.json"
_SPECIAL = ("bos_token_id", "eos_token_id", "unk_token_id", "pad_token_id")


def load_gguf_tokenizer(directory: str, gguf_file: str, trust_remote_code: bool = False) -> Any:
    """The tokenizer of the GGUF file `gguf_file` in `directory`, from the cache or converted."""
    from sglang.model_loader.gguf_cache import cached

    path = os.path.join(directory, gguf_file)
    kwargs = {
        "gguf_file": gguf_file,
        "local_files_only": True,
        "trust_remote_code": trust_remote_code,
    }

    def build() -> _Entry:
        return _Entry(convert(path, directory, **kwargs), metadata_fingerprint(path))

    def load(entry: str) -> _Entry:
        return _Entry.load(entry, directory, metadata_fingerprint(path))

    return cached(path, "tokenizer", build, load).tokenizer


def convert(path: str, directory: str, **kwargs: Any) -> Any:
    """`AutoTokenizer.from_pretrained(directory, **kwargs)` for the GGUF file `path`, without
    the legacy metadata parse (see the module docstring)."""
    from transformers import AutoTokenizer

    from sglang.model_loader.gguf_config import legacy_config_answered

    with legacy_config_answered(path):
        return AutoTokenizer.from_pretrained(directory, **kwargs)


def metadata_fingerprint(path: str) -> str | None:
    """A digest of the file's `tokenizer.*` metadata (string arrays as their lengths); None
    without transformers' fast header reader."""
    try:
        from transformers.integrations.gguf import read_gguf_metadata
    except ImportError:
        return None
    metadata, _ = read_gguf_metadata(path, ())
    fields = {k: v for k, v in metadata.items() if k.startswith("tokenizer.")}
    text = json.dumps(fields, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _summary(tokenizer: Any) -> dict[str, Any]:
    return {"length": len(tokenizer), **{k: getattr(tokenizer, k, None) for k in _SPECIAL}}


class _Entry:
    """A converted tokenizer as a gguf_cache entry: its files and a record (RECORD)."""

    def __init__(self, tokenizer: Any, fingerprint: str | None) -> None:
        self.tokenizer, self.fingerprint = tokenizer, fingerprint

    def save_pretrained(self, directory: str) -> None:
        self.tokenizer.save_pretrained(directory)
        record = {"metadata": self.fingerprint, **_summary(self.tokenizer)}
        with open(os.path.join(directory, RECORD), "w", encoding="utf-8") as f:
            json.dump(record, f)

    @classmethod
    def load(cls, entry: str, directory: str, fingerprint: str | None) -> _Entry:
        """Raises ValueError for an entry that is not this file's tokenizer (gguf_cache then
        rebuilds it)."""
        from transformers import AutoTokenizer

        with open(os.path.join(entry, RECORD), encoding="utf-8") as f:
            record = json.load(f)
        if record.get("metadata") != fingerprint:
            raise ValueError("stale: the file's tokenizer metadata changed")
        tokenizer = AutoTokenizer.from_pretrained(entry, local_files_only=True)
        loaded = _summary(tokenizer)
        if {k: record.get(k) for k in loaded} != loaded:
            raise ValueError(f"inconsistent: it loads as {loaded}, recorded as {record}")
        tokenizer.name_or_path = directory  # as the uncached conversion names it
        return cls(tokenizer, fingerprint)
