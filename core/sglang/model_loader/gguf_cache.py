"""A disk cache of what transformers builds from a GGUF file's metadata: its config, its
tokenizer, and the names of its tensors in the Hugging Face model (gguf_weights.gguf_hf_names,
which builds transformers' model on the meta device for them: 1-2 s of imports).

transformers reads both by parsing the whole metadata in Python (the vocabulary and merges
included) and converting the vocabulary into a fast tokenizer: 3-4 s each for SmolLM2-135M on
2 cores, paid by every process that starts (the server's frontend and its scheduler each).
gguf_config and gguf_tokenizer now build them from the fast header reader (well under a
second, most of it transformers' imports), and the cache saves the rest. The first start saves what it built with `save_pretrained`
under the user's cache directory ($SGLANG_CACHE_DIR, else $XDG_CACHE_HOME/sglang, else
~/.cache/sglang), keyed by the file's absolute path, size and modification time and by the
versions of transformers and of this cache; later starts load those files (a config.json and
a tokenizer.json: well under a second). A changed file, or another transformers, misses.

Entries are written to a temporary directory and renamed into place, so concurrent starts
never read half an entry; a cache that cannot be written is skipped (logged at debug level).
A missing entry is built under an advisory lock (`<entry>.lock`, flock): processes that start
together (the frontend and the scheduler of one server, on a fresh machine) build it once,
the others wait for it and load it. A lock that cannot be taken (no flock, an unwritable
directory, a holder busier than LOCK_WAIT_S) costs a build of one's own, never a start.
An entry that fails to load, or that `load` finds inconsistent with the file, is rebuilt.
SGLANG_CACHE_DIR=off turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
ENV = "SGLANG_CACHE_DIR"
LOCK_WAIT_S = 120.0  # how long a start waits for another process building the same entry


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
    A damaged entry is rebuilt; another process building the same entry is waited for."""
    entry = entry_path(gguf_path, what)
    if entry is None:
        return build()
    found, value = _load(entry, load)
    if found:
        return value
    with _building(entry):
        found, value = _load(entry, load)  # built by the process we waited for
        if found:
            return value
        value = build()
        _save(value, entry)
    return value


def _load(entry: str, load: Callable[[str], Any]) -> tuple[bool, Any]:
    if not os.path.isdir(entry):
        return False, None
    try:
        return True, load(entry)
    except Exception as e:  # noqa: BLE001 - a damaged entry costs a rebuild, not a start
        logger.warning("rebuilding the damaged cache entry %s (%s)", entry, e)
        _remove(entry)
        return False, None


def _remove(entry: str) -> None:
    """Move the entry aside, then delete it: a reader never sees it half deleted."""
    try:
        doomed = tempfile.mkdtemp(prefix=".removing-", dir=os.path.dirname(entry))
        os.rename(entry, os.path.join(doomed, "entry"))
    except OSError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


@contextlib.contextmanager
def _building(entry: str) -> Iterator[None]:
    """Hold the entry's build lock (see the module docstring); without one, go on."""
    try:
        import fcntl

        os.makedirs(os.path.dirname(entry), exist_ok=True)
        fd = os.open(entry + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except (ImportError, OSError) as e:
        logger.debug("building %s without a lock: %s", entry, e)
        yield
        return
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    logger.warning("%s is still being built elsewhere: building it here", entry)
                    break
                time.sleep(0.02)
            except OSError as e:  # a file system without locks
                logger.debug("building %s without a lock: %s", entry, e)
                break
        yield
    finally:
        os.close(fd)  # releases the lock


def _save(value: Any, entry: str) -> None:
    staging = None
    try:
        os.makedirs(os.path.dirname(entry), exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".staging-", dir=os.path.dirname(entry))
        value.save_pretrained(staging)
        os.rename(staging, entry)  # fails when another process saved it first
        staging = None
    except Exception as e:  # noqa: BLE001 - an entry not written costs a build next time
        logger.debug("not caching %s: %s", entry, e)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
