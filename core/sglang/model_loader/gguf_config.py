"""A GGUF file's transformers config, built from the metadata alone.

`AutoConfig.from_pretrained(dir, gguf_file=...)` builds the config of most architectures
(llama, mistral, qwen2/3, gemma2/3, ...) through transformers' legacy reader
(`modeling_gguf_pytorch_utils.load_gguf_checkpoint(path, return_tensors=False)`), which parses
every metadata field in Python, the vocabulary and the merges included: 4-5 s of CPU for
SmolLM2-135M's 49,152 tokens, on every start whose config is not in the disk cache yet
(gguf_cache). Only a few scalar keys make the config. This module reads the metadata with
transformers' fast header reader (`integrations.gguf.read_gguf_metadata`: the vocabulary is
walked, not decoded) and applies the legacy reader's own steps to it, with its own tables
(`GGUF_TO_TRANSFORMERS_MAPPING["config"]`, `GGUF_CONFIG_DEFAULTS_MAPPING`): the architecture
renames, `tie_word_embeddings` from the absence of `output.weight`, the defaults, the key
renames in file order, `gemma3` -> `gemma3_text`, `vocab_size` from the vocabulary's length.
Architectures the legacy reader treats specially beyond that (`LEGACY_ONLY`), the ones
transformers already reads fast (`GGUF_CONFIG_ARCHS`), and files without transformers' fast
reader take `AutoConfig` as before: `gguf_config` returns None for them.
tests/model_loader/test_gguf_config.py checks the result equal to AutoConfig's.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
from collections.abc import Iterator
from typing import Any

# The legacy reader sets more than key renames for these (t5's gated act and encoder classes,
# stablelm's flags from tensor names, gpt-oss rope scaling, lfm2's layer kinds, minimax-m2's
# scoring function, gemma4's eos list): they keep transformers' own path.
LEGACY_ONLY = ("t5", "stablelm", "gpt_oss", "gpt-oss", "lfm2", "minimax-m2", "gemma4")
_RENAMED = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe"}


class _AllButVocabulary:
    """The metadata keys whose string arrays are decoded: all but the vocabulary's."""

    def __contains__(self, key: object) -> bool:
        return not str(key).startswith("tokenizer.ggml.")


def gguf_config_dict(path: str) -> dict[str, Any] | None:
    """The config dict transformers' legacy GGUF reader gives for this file, or None where
    this module leaves the file to it (see the module docstring)."""
    try:
        from transformers.integrations.ggml import GGUF_CONFIG_DEFAULTS_MAPPING
        from transformers.integrations.gguf import GGUF_CONFIG_ARCHS, read_gguf_metadata
        from transformers.modeling_gguf_pytorch_utils import (
            GGUF_SUPPORTED_ARCHITECTURES,
            GGUF_TO_TRANSFORMERS_MAPPING,
        )
    except ImportError:
        return None
    metadata, tensor_names = read_gguf_metadata(path, string_arrays=_AllButVocabulary())
    architecture = metadata["general.architecture"]
    if architecture in GGUF_CONFIG_ARCHS or any(name in architecture for name in LEGACY_ONLY):
        return None
    name = metadata.get("general.name")
    updated = "mistral" if "llama" in architecture and name and "mistral" in name else architecture
    updated = _RENAMED.get(architecture, updated)
    if (
        architecture not in GGUF_SUPPORTED_ARCHITECTURES
        and updated not in GGUF_SUPPORTED_ARCHITECTURES
    ):
        return None  # AutoConfig raises its own error
    config: dict[str, Any] = {
        "tie_word_embeddings": "output.weight" not in tensor_names
        or architecture in ("falcon", "bloom")
    }
    defaults = GGUF_CONFIG_DEFAULTS_MAPPING.get(
        updated, GGUF_CONFIG_DEFAULTS_MAPPING.get(architecture) or {}
    )
    for key, value in defaults.items():
        config.setdefault(key, value)
    renames = GGUF_TO_TRANSFORMERS_MAPPING["config"]
    for key, value in metadata.items():
        prefix, _, config_key = key.replace(architecture, updated).partition(".")
        if isinstance(value, list) and len(value) == 1:
            value = value[0]  # the legacy reader unwraps one-element arrays
        if isinstance(value, str) and architecture in value:
            value = value.replace(architecture, updated)
        renamed = renames.get(prefix, {}).get(config_key, -1) if prefix in renames else -1
        if renamed not in (-1, None):
            config[renamed] = value
    if config.get("model_type") == "gemma3":
        config["model_type"] = "gemma3_text"
    if "vocab_size" not in config and isinstance(metadata.get("tokenizer.ggml.tokens"), int):
        config["vocab_size"] = metadata["tokenizer.ggml.tokens"]  # the reader's count
    return config


def gguf_config(path: str, directory: str) -> Any | None:
    """The transformers config object of the GGUF file `path` (named `directory`, as
    AutoConfig names it), or None where AutoConfig is to build it."""
    config = gguf_config_dict(path)
    if config is None:
        return None
    from transformers import CONFIG_MAPPING

    built = CONFIG_MAPPING[config["model_type"]].from_dict(config)
    built.name_or_path = directory
    return built


_LEGACY_LOCK = threading.Lock()


@contextlib.contextmanager
def legacy_config_answered(path: str) -> Iterator[None]:
    """Within: transformers' legacy reader asked for the config of `path` alone
    (`load_gguf_checkpoint(path, return_tensors=False)`, which `AutoTokenizer.from_pretrained(
    gguf_file=...)` calls only to pick the tokenizer class, parsing every field: 4 s of CPU for
    SmolLM2, where the tokenizer's own conversion takes 0.4 s) gets `gguf_config_dict`'s equal
    dict. Every other call, and every file this module leaves to transformers, goes through."""
    try:
        config = gguf_config_dict(path)
    except Exception:  # noqa: BLE001 - transformers' own reader then reports the file
        config = None
    if config is None:
        yield
        return
    import transformers.modeling_gguf_pytorch_utils as legacy

    with _LEGACY_LOCK:  # one substitution at a time in this process
        original = legacy.load_gguf_checkpoint

        def load(gguf_checkpoint_path, return_tensors=False, model_to_load=None, torch_dtype=None):
            if not return_tensors and model_to_load is None and _same(gguf_checkpoint_path, path):
                return {"config": copy.deepcopy(config)}
            return original(gguf_checkpoint_path, return_tensors, model_to_load, torch_dtype)

        legacy.load_gguf_checkpoint = load
        try:
            yield
        finally:
            legacy.load_gguf_checkpoint = original


def _same(a: Any, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, TypeError):
        return False
