"""The tokenizer, its chat template, and the model's generation defaults.

Tokenizers come from transformers' AutoTokenizer, from local files only: a Hugging Face
directory (tokenizer.json / tokenizer_config.json / chat_template.jinja) or a GGUF file's
metadata (`gguf_file=`), which carries the vocabulary, merges, special tokens and the chat
template under `tokenizer.chat_template` (converted once, then loaded from a disk cache: see
gguf_tokenizer).
"""

from __future__ import annotations

import json
import os
from typing import Any

from sglang.model_loader.source import ModelSource, ModelSourceError, resolve_source

GENERATION_KEYS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")


def load_tokenizer(source: ModelSource | str | os.PathLike, trust_remote_code: bool = False) -> Any:
    """The transformers tokenizer of a model source, or of a tokenizer path.

    source: a ModelSource, a model path, or a directory holding only tokenizer files (as
    `--tokenizer-path` gives).
    """
    from transformers import AutoTokenizer

    directory, gguf_file = _tokenizer_location(source)
    try:
        if gguf_file is not None:
            from sglang.model_loader.gguf_tokenizer import load_gguf_tokenizer

            return load_gguf_tokenizer(directory, gguf_file, trust_remote_code)
        return AutoTokenizer.from_pretrained(
            directory, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise ModelSourceError(
            f"cannot load a tokenizer from {directory!r}"
            f"{f' (GGUF file {gguf_file})' if gguf_file else ''}: {exc}; "
            "pass a directory with tokenizer files as --tokenizer-path"
        ) from exc


def _tokenizer_location(source: ModelSource | str | os.PathLike) -> tuple[str, str | None]:
    """(directory, GGUF file name or None); a directory that is no model is a tokenizer's."""
    if not isinstance(source, ModelSource):
        try:
            source = resolve_source(source)
        except ModelSourceError:
            path = os.path.abspath(os.path.expanduser(os.fspath(source)))
            if not os.path.isdir(path):
                raise
            return path, None
    return source.directory, source.gguf_file


def chat_template(tokenizer: Any, source: ModelSource | str | None = None) -> str | None:
    """The tokenizer's chat template string, None when it has none.

    A tokenizer with several named templates gives its "default" one. Where the tokenizer
    carries none and `source` is a GGUF file, the file's `tokenizer.chat_template` is read.
    """
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default")
    if template:
        return template
    if source is not None:
        source = resolve_source(source)
        if source.is_gguf:
            return _gguf_chat_template(source.weight_files[0])
    return None


def _gguf_chat_template(path: str) -> str | None:
    try:
        from transformers.integrations.gguf.reader import read_gguf_metadata
    except ImportError:
        from gguf import GGUFReader

        field = GGUFReader(path).fields.get("tokenizer.chat_template")
        return None if field is None else bytes(field.parts[field.data[0]]).decode("utf-8")
    metadata, _ = read_gguf_metadata(path)
    return metadata.get("tokenizer.chat_template")


def generation_defaults(source: ModelSource | str | os.PathLike) -> dict[str, Any]:
    """The model's generation defaults; {} when it declares none.

    Keys, each only when the model sets it: temperature, top_p, top_k, min_p,
    repetition_penalty, and eos_token_ids (a list, from eos_token_id, which may be one int).
    From generation_config.json in a Hugging Face directory; from a GGUF file's
    `general.sampling.*` metadata (llama.cpp's keys), and for the embedded default model, whose
    file has none, the settings its model card recommends (default_model.py).
    """
    source = resolve_source(source)
    if source.is_gguf:
        return _gguf_generation_defaults(source.weight_files[0])
    path = os.path.join(source.directory, "generation_config.json")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    defaults = {key: raw[key] for key in GENERATION_KEYS if raw.get(key) is not None}
    eos = raw.get("eos_token_id")
    if eos is not None:
        defaults["eos_token_ids"] = [eos] if isinstance(eos, int) else list(eos)
    return defaults


SAMPLING_DEFAULTS_MODES = ("model", "openai")


def sampling_defaults(source: ModelSource | str | os.PathLike, mode: str = "model") -> dict:
    """The sampling parameters a request that leaves them unset gets (SGLang's
    `--sampling-defaults`): "model" takes the model's generation defaults, "openai" none
    (OpenAI's temperature 1, top_p 1)."""
    if mode not in SAMPLING_DEFAULTS_MODES:
        raise ValueError(f"--sampling-defaults must be one of {SAMPLING_DEFAULTS_MODES}")
    if mode == "openai":
        return {}
    return {k: v for k, v in generation_defaults(source).items() if k in GENERATION_KEYS}


# llama.cpp's GGUF sampling metadata -> our keys
_GGUF_SAMPLING_KEYS = {
    "general.sampling.temp": "temperature",
    "general.sampling.top_p": "top_p",
    "general.sampling.top_k": "top_k",
    "general.sampling.min_p": "min_p",
    "general.sampling.penalty_repeat": "repetition_penalty",
}


def _gguf_generation_defaults(path: str) -> dict[str, Any]:
    from sglang.model_loader.default_model import DEFAULT_MODEL_FILE, DEFAULT_MODEL_GENERATION

    try:
        from transformers.integrations.gguf.reader import read_gguf_metadata

        metadata, _ = read_gguf_metadata(path)
    except ImportError:
        from gguf import GGUFReader

        fields = GGUFReader(path).fields
        metadata = {k: fields[k].contents() for k in _GGUF_SAMPLING_KEYS if k in fields}
    defaults = {ours: metadata[key] for key, ours in _GGUF_SAMPLING_KEYS.items() if key in metadata}
    if not defaults and os.path.basename(path) == DEFAULT_MODEL_FILE:
        defaults = dict(DEFAULT_MODEL_GENERATION)
    return defaults
