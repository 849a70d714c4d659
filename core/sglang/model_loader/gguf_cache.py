"""A disk cache of what transformers builds from a GGUF file's metadata: its config, its
tokenizer, and the names of its tensors in the Hugging Face model (gguf_weights.gguf_hf_names,
which builds transformers' model on the meta device for them: 1-2 s of imports).

transformers reads both by parsing the whole metadata in Python (the vocabulary and merges
included) and converting the vocabulary into a fast tokenizer: 3-4 s for the config and 3 s
for the tokenizer of SmolLM2-135M on 2 cores, paid by every process that starts (the server's
frontend and its scheduler each). The first start saves what it built with `save_pretrained`
under the user's cache directory ($SGLANG_CACHE_DIR, else $XDG_CACHE_HOME/sglang, else
~/.cache/sglang), keyed by the file's absolute path, size and modification time and by the
versions of transformers and of this cache; later starts load those files (a config.json and
a tokenizer.json: well under a second). A changed file, or another transformers, misses.

Entries are written to a temporary directory and renamed into place, so concurrent starts
never read half an entry; a cache that cannot be written is skipped (logged at debug level).
SGLANG_CACHE_DIR=off turns the cache off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
ENV = "SGLANG_CACHE_DIR"


def cache_root() -> str | None:
    """The cache directory, None when turned off."""
    configured = os.environ.get(ENV)
    if configured is not None:
        return None if configured.lower() in ("off", "0", "") else configured
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "sglang")


def entry_path(gguf_path: str, what: str) -> str | None:
    """The directory holding `what` ("config", "tokenizer") for this file, None when off."""
    root = cache_root()
    if root is None:
        return None
    import transformers

    path = os.path.abspath(gguf_path)
    stat = os.stat(path)
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{transformers.__version__}|{CACHE_VERSION}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return os.path.join(root, "gguf", what, digest)


def cached(gguf_path: str, what: str, build: Callable[[], Any], load: Callable[[str], Any]) -> Any:
    """load(entry) when the entry exists, else build() (saved into the entry for next time).
    A damaged entry is rebuilt."""
    entry = entry_path(gguf_path, what)
    if entry is not None and os.path.isdir(entry):
        try:
            return load(entry)
        except Exception as e:  # noqa: BLE001 - a damaged entry costs a rebuild, not a start
            logger.warning("ignoring the damaged cache entry %s (%s)", entry, e)
            shutil.rmtree(entry, ignore_errors=True)
    value = build()
    if entry is not None:
        _save(value, entry)
    return value


def _save(value: Any, entry: str) -> None:
    try:
        os.makedirs(os.path.dirname(entry), exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".staging-", dir=os.path.dirname(entry))
        value.save_pretrained(staging)
        try:
            os.rename(staging, entry)
        except OSError:  # another process saved it first
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as e:
        logger.debug("not caching %s: %s", entry, e)
