"""The xeon backend's native kernels (csrc/): C++ compiled for this machine on first use.

Built with torch.utils.cpp_extension.load (ninja, -O3 -march=native) into torch's extensions
directory ($TORCH_EXTENSIONS_DIR, default ~/.cache/torch_extensions), under a name hashed from
the checkout and its sources (`build_name`), where later processes find it: only the first
process compiles (about a minute on 2 cores), the others load it in well under a second;
concurrent builds of one name are serialised by an flock (`_build_lock`), which also clears
torch's lock file when a killed build left it. The kernel units include no torch headers (they compile
in seconds); bindings.cpp holds the checks and the thread split.

Nothing here is required: the kernel modules register each native kernel next to its torch
implementation, with `available=why_unavailable`, so kernel resolution triggers the build and
takes the torch kernel when it fails (no compiler, no ninja, a compile error: the reason is
logged once and shown by `sglang backends`). SGLANG_XEON_NATIVE=0 turns them off;
SGLANG_XEON_MAX_ISA=avx2 (or avx512) builds them for less than this CPU offers (cpu.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ENV = "SGLANG_XEON_NATIVE"
NAME = "sglang_xeon_native"
CSRC = Path(__file__).parent / "csrc"
SOURCES = (
    "bindings.cpp",
    "norm.cpp",
    "rope.cpp",
    "activation.cpp",
    "attention.cpp",
    "gemm_int4.cpp",
    "gemm_w8a16.cpp",
    "gemm_w4a8.cpp",
)
# -fopenmp: at::parallel_for is inline OpenMP code, compiled into bindings.cpp (without the flag
# it runs on one thread); the extension then shares the libgomp torch has already loaded.
CFLAGS = ("-O3", "-fopenmp", "-fno-math-errno", "-DNDEBUG")


def cflags() -> tuple[str, ...]:
    """CFLAGS and the target (-march=native, capped by SGLANG_XEON_MAX_ISA: cpu.march_flags)."""
    from . import cpu

    return CFLAGS + cpu.march_flags()


def build_name() -> str:
    """The extension's name, hence its build directory: NAME plus a hash of this checkout's
    csrc path, every source and header, the flags and torch's version. Two checkouts (or two
    versions of the sources) then never share a build directory, where torch would rebuild on
    every switch between them; an unchanged checkout finds its build again."""
    import torch

    digest = hashlib.sha256(f"{CSRC.resolve()}|{cflags()}|{torch.__version__}".encode())
    for path in sorted(CSRC.iterdir()):
        if path.suffix in (".cpp", ".h"):
            digest.update(path.name.encode() + path.read_bytes())
    return f"{NAME}_{digest.hexdigest()[:12]}"


ops: Any = None  # the loaded extension module, once `why_unavailable()` returned None
_lock = threading.Lock()
_failure: str | None = None
_tried = False


def why_unavailable() -> str | None:
    """None when the native kernels are loaded (building them on the first call), else why
    not. Safe to call from any thread; never raises."""
    global _tried
    if ops is not None:
        return None
    if os.environ.get(ENV, "1") == "0":
        return f"turned off by {ENV}=0"
    with _lock:
        if not _tried:
            _tried = True
            _load()
    return None if ops is not None else _failure


def _missing_tool() -> str | None:
    from torch.utils import cpp_extension

    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return f"no C++ compiler ({compiler!r} not on PATH)"
    if not cpp_extension.is_ninja_available():
        return "ninja not found (pip install ninja), needed by torch.utils.cpp_extension"
    return None


@contextlib.contextmanager
def _interpreter_tools_first():
    """PATH with this interpreter's scripts directory first while torch runs ninja, when a ninja
    is installed there (pip's, as a dependency of this package). Two ninjas keep build logs
    that do not agree (the venv's 1.13 and a system 1.11 hash a command differently), so a
    server started from an activated venv and one started as `venv/bin/sglang` rebuilt the
    kernels (~30 s) every time they took turns; the interpreter's own ninja is the same one
    either way."""
    scripts = os.path.dirname(sys.executable)
    before = os.environ.get("PATH", "")
    if not os.access(os.path.join(scripts, "ninja"), os.X_OK):
        yield
        return
    os.environ["PATH"] = os.pathsep.join([scripts, before]) if before else scripts
    try:
        yield
    finally:
        os.environ["PATH"] = before


QUIET_WAIT_S = 1.0  # how long the build lock is waited for before saying so


def _try_lock(handle, seconds: float) -> bool:
    """Take the flock on `handle` within `seconds` (polling), or return False."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


@contextlib.contextmanager
def _build_lock(build_dir: str):
    """Serialise this checkout's builds and loads with an flock, which the kernel releases when
    its holder dies, and clear torch's own lock file left by a killed one. torch marks a build
    in progress with `build_dir/lock` (created, then removed when the build ends) and every
    later load of the name, built or not, waits for that file to go: a build killed mid-way
    (Ctrl-C, SIGKILL, the OOM killer) left it behind and every later start waited forever,
    silently. Whoever holds the flock is the only process in torch's build, so a `lock` found
    while holding it is stale."""
    path = os.path.join(build_dir, ".sglang-build.flock")
    with open(path, "a") as handle:
        if not _try_lock(handle, QUIET_WAIT_S):  # another rank loading it takes well under 1 s
            logger.warning(
                "waiting for another process building the xeon native kernels (%s)", build_dir
            )
            fcntl.flock(handle, fcntl.LOCK_EX)
        stale = os.path.join(build_dir, "lock")
        if os.path.exists(stale):
            logger.warning("removing a stale build lock left by a killed build: %s", stale)
            with contextlib.suppress(FileNotFoundError):
                os.remove(stale)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load() -> None:
    with _interpreter_tools_first():
        _build_and_load()


def _build_and_load() -> None:
    global ops, _failure
    _failure = _missing_tool()
    if _failure is None:
        try:
            from torch.utils import cpp_extension

            start = time.perf_counter()
            name = build_name()
            build_dir = cpp_extension._get_build_directory(name, verbose=False)
            library = os.path.join(build_dir, f"{name}.so")
            with _build_lock(build_dir):
                built_at = os.stat(library).st_mtime_ns if os.path.exists(library) else None
                if built_at is None:  # a minute of silence otherwise (at warning level)
                    logger.warning(
                        "building the xeon native kernels for this install in %s (once; "
                        "about a minute on 2 cores)",
                        build_dir,
                    )
                module = cpp_extension.load(
                    name=name,
                    sources=[str(CSRC / s) for s in SOURCES],
                    extra_cflags=list(cflags()),
                    extra_ldflags=["-fopenmp"],
                    verbose=False,
                )
            took = time.perf_counter() - start
            if built_at is None:
                logger.warning("xeon native kernels built in %.1f s (%s)", took, build_dir)
            elif os.stat(library).st_mtime_ns != built_at:  # ninja found the build out of date
                logger.warning(
                    "xeon native kernels rebuilt in %.1f s: ninja (%s) found the build in %s "
                    "out of date",
                    took,
                    shutil.which("ninja") or "?",
                    build_dir,
                )
            else:
                logger.info("xeon native kernels loaded in %.1f s (%s)", took, build_dir)
            ops = module
            return
        except Exception as e:  # a compile error must not stop the engine: torch kernels remain
            lines = [ln for ln in str(e).splitlines() if ln.strip()]
            _failure = "build failed: " + " | ".join(lines[-3:])[:500]
    logger.warning("xeon native kernels unavailable (%s); using the torch kernels", _failure)
