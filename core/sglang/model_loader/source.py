"""Where a model's files are: resolving a `--model-path` into a typed `ModelSource`.

Accepted layouts, first match wins:

- a Hugging Face directory: `config.json` and weights, as `model.safetensors.index.json` (its
  shards), `*.safetensors`, `pytorch_model.bin.index.json` (its shards) or `pytorch_model*.bin`;
- a `.gguf` file;
- a directory holding exactly one `.gguf` file (and no Hugging Face weights).

Nothing is downloaded: a path that does not exist locally is an error.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os

SAFETENSORS_INDEX = "model.safetensors.index.json"
PT_INDEX = "pytorch_model.bin.index.json"
GGUF_MAGIC = b"GGUF"


class ModelSourceError(ValueError):
    """A model path that cannot be used, with the reason and what was expected."""


CONFIG_ONLY = "config-only"  # a directory with config.json and no weights


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """A resolved model location.

    path: the path as given. directory: absolute directory of config and tokenizer files (for a
    GGUF file, the directory holding it). format: "safetensors", "pt" or "gguf". weight_files:
    absolute paths of the weight files, shards in name order. gguf_file: the GGUF file's name
    inside `directory` (what transformers' `gguf_file=` takes), None for other formats.
    format "config-only": a directory with config.json and no weights (for --load-format dummy).
    """

    path: str
    directory: str
    format: str
    weight_files: tuple[str, ...]
    gguf_file: str | None = None

    @property
    def is_gguf(self) -> bool:
        return self.format == "gguf"

    @property
    def config_path(self) -> str | None:
        """`config.json` of a Hugging Face directory; None for GGUF (its metadata is the config)."""
        path = os.path.join(self.directory, "config.json")
        return None if self.is_gguf or not os.path.isfile(path) else path


def resolve_source(model_path: str | os.PathLike | ModelSource) -> ModelSource:
    """Resolve `model_path` into a ModelSource; a ModelSource passes through unchanged.

    Raises ModelSourceError for a missing path, a directory without weights, several GGUF files
    in one directory, or a file that is not GGUF.
    """
    if isinstance(model_path, ModelSource):
        return model_path
    given = os.fspath(model_path)
    path = os.path.abspath(os.path.expanduser(given))
    if not os.path.exists(path):
        raise ModelSourceError(
            f"model path {given!r} does not exist (no model hub is reachable: pass a local "
            "Hugging Face directory or a .gguf file)"
        )
    if os.path.isfile(path):
        return _gguf_source(given, path)
    return _directory_source(given, path)


def _gguf_source(given: str, path: str) -> ModelSource:
    if not path.lower().endswith(".gguf"):
        raise ModelSourceError(
            f"unknown model format for file {given!r}: a model path is a Hugging Face directory "
            "(config.json + *.safetensors or pytorch_model.bin) or a .gguf file"
        )
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise ModelSourceError(f"{given!r} is named .gguf but does not start with the GGUF magic")
    directory, name = os.path.split(path)
    return ModelSource(given, directory, "gguf", (path,), name)


def _directory_source(given: str, path: str) -> ModelSource:
    has_config = os.path.isfile(os.path.join(path, "config.json"))
    found = _safetensors_files(path) or _pt_files(path)
    if found is not None:
        fmt, files = found
        if not has_config:
            raise ModelSourceError(
                f"{given!r} holds {fmt} weights but no config.json (a Hugging Face directory "
                "needs both)"
            )
        return ModelSource(given, path, fmt, files)
    ggufs = sorted(glob.glob(os.path.join(path, "*.gguf")))
    if not ggufs and has_config:
        # A bare config: enough for --load-format dummy (benchmarks); loading weights from it
        # fails in iterate_weights with a message saying so.
        return ModelSource(given, path, CONFIG_ONLY, ())
    if len(ggufs) == 1:
        return _gguf_source(given, ggufs[0])
    if len(ggufs) > 1:
        names = ", ".join(os.path.basename(f) for f in ggufs)
        raise ModelSourceError(
            f"{given!r} holds several .gguf files ({names}): pass the one to load as --model-path"
        )
    raise ModelSourceError(
        f"no model weights in directory {given!r}: expected config.json with *.safetensors, "
        f"{SAFETENSORS_INDEX}, pytorch_model.bin or {PT_INDEX}, or a single .gguf file"
    )


def _safetensors_files(path: str) -> tuple[str, tuple[str, ...]] | None:
    index = os.path.join(path, SAFETENSORS_INDEX)
    if os.path.isfile(index):
        return "safetensors", _index_shards(path, index)
    files = sorted(glob.glob(os.path.join(path, "*.safetensors")))
    # Mistral repositories ship a duplicate of the weights in their own layout beside HF's.
    hf_files = [f for f in files if not os.path.basename(f).startswith("consolidated")]
    files = hf_files or files
    return ("safetensors", tuple(files)) if files else None


def _pt_files(path: str) -> tuple[str, tuple[str, ...]] | None:
    index = os.path.join(path, PT_INDEX)
    if os.path.isfile(index):
        return "pt", _index_shards(path, index)
    files = sorted(glob.glob(os.path.join(path, "pytorch_model*.bin")))
    return ("pt", tuple(files)) if files else None


def _index_shards(path: str, index: str) -> tuple[str, ...]:
    """The shard files an index's weight_map names, each once, in name order."""
    try:
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
    except (OSError, ValueError, KeyError) as exc:
        raise ModelSourceError(f"cannot read the shard index {index}: {exc}") from exc
    shards = tuple(os.path.join(path, name) for name in sorted(set(weight_map.values())))
    missing = [os.path.basename(s) for s in shards if not os.path.isfile(s)]
    if missing:
        raise ModelSourceError(f"{index} names shards that are missing: {', '.join(missing)}")
    return shards
