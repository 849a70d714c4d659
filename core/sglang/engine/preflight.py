"""Startup checks that run before anything heavy loads, and the one-line error they raise.

A failed start is one line naming what is wrong and what would fix it (`StartupError`), with an
exit code per class of failure, the same for `sglang serve`, `python -m sglang.launch_server` and
`sglang.Engine(...)`. The cheap checks (address, model path, device) run in the parent before
the scheduler process is spawned; a failure inside the scheduler process comes back over its
ready pipe as a `StartupError` too (`failure_from`), its traceback logged at debug level.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Mapping

# Exit codes of `sglang serve` / `python -m sglang.launch_server`, one per class of failure.
EXIT_FAILURE = 1  # anything unexpected (the traceback is logged with --log-level debug)
EXIT_USAGE = 2  # a bad flag or value (argparse's own code)
EXIT_DEVICE = 3  # --device names no installed backend, or one unavailable here
EXIT_MODEL = 4  # the model path is missing, not a model, or its model cannot be loaded
EXIT_ADDRESS = 5  # --host/--port cannot be bound (the port is in use)
EXIT_MEMORY = 6  # the weights or the KV cache do not fit in the device's memory

EXIT_CODES = {
    EXIT_FAILURE: "unexpected failure (rerun with --log-level debug for the traceback)",
    EXIT_USAGE: "bad flag or value",
    EXIT_DEVICE: "device unavailable or unknown (see `sglang backends`)",
    EXIT_MODEL: "model not found or not loadable",
    EXIT_ADDRESS: "address in use or not bindable",
    EXIT_MEMORY: "not enough memory for the weights or the KV cache",
}


DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"  # the name the embedded default model is served as


class StartupError(RuntimeError):
    """The engine could not start. `str(e)` is one line; `exit_code` is one of EXIT_CODES."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def exit_codes_text() -> str:
    """The exit codes as `--help` shows them."""
    return "exit codes:\n" + "\n".join(f"  {c}  {what}" for c, what in EXIT_CODES.items())


ONE_LINE_MAX = 400


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (at most ONE_LINE_MAX characters), with its type
    unless it is one of ours or a plain ValueError/RuntimeError."""
    text = " ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())
    if len(text) > ONE_LINE_MAX:
        text = text[: ONE_LINE_MAX - 3] + "..."
    if not text:
        return type(exc).__name__
    plain = type(exc).__module__.startswith("sglang.") or type(exc) in (ValueError, RuntimeError)
    return text if plain else f"{type(exc).__name__}: {text}"


# --- the checks ------------------------------------------------------------------------------
def check_model(args):
    """(settings, ModelSource): the model path resolves to something loadable; the settings
    returned name the default model's path and served name when `args` names no model. Reads
    directory listings and a GGUF file's first bytes."""
    from sglang.model_loader.default_model import DefaultModelMissing, default_model_path
    from sglang.model_loader.source import CONFIG_ONLY, ModelSourceError, resolve_source

    try:
        if args.model_path is None:
            args = dataclasses.replace(
                args,
                model_path=default_model_path(),
                served_model_name=args.served_model_name or DEFAULT_MODEL_NAME,
            )
        source = resolve_source(args.model_path)
    except (ModelSourceError, DefaultModelMissing) as e:
        raise StartupError(str(e), EXIT_MODEL) from None
    if source.format == CONFIG_ONLY and args.load_format != "dummy":
        raise StartupError(
            f"--model-path {args.model_path!r} holds a config.json but no weights: add the "
            "weights (*.safetensors or a .gguf file), or pass --load-format dummy for random ones",
            EXIT_MODEL,
        )
    if args.tokenizer_path is not None and not os.path.exists(args.tokenizer_path):
        raise StartupError(
            f"--tokenizer-path {args.tokenizer_path!r} does not exist (leave it unset to use the "
            "model's own tokenizer)",
            EXIT_MODEL,
        )
    return args, source


def check_device(args, found=None):
    """The backend `--device` names (or `auto` picks) is installed and available here. Imports
    the backend plugins (torch with them) and runs their probes, which are cheap by contract.
    Returns the chosen LoadedBackend."""
    from sglang.backend.discovery import discover
    from sglang.backend.selection import BackendSelectionError, choose_backend

    try:
        backend, _ = choose_backend(found or discover(), args.device)
    except BackendSelectionError as e:
        raise StartupError(e.summary, EXIT_DEVICE) from None
    return backend


class _Columns(Mapping):
    """{backend: its conformance column's features}, read by the checks only to name the
    backends that can run what the chosen one cannot: made on first use (a column registers
    the backend's kernels: the GPU backends import their kernel compiler, 0.2 s of this process's
    checks, which the spawned scheduler waits for)."""

    def __init__(self, found) -> None:
        self._found, self._columns = found, None

    def _all(self) -> dict:
        if self._columns is None:
            from sglang.conformance.support import column

            self._columns = {}
            for name, b in self._found.backends.items():
                caps = column(self._found, b).capabilities
                self._columns[name] = caps.features() if caps is not None else None
        return self._columns

    def __getitem__(self, name):
        return self._all()[name]

    def __iter__(self):
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def check_quantization(args, source, found, backend) -> None:
    """The checkpoint's quantization (or --quantization) is a known method, consistent, and one
    the chosen backend can run (else: the format, the backend and the backends that can). Reads
    config.json and hf_quant_config.json only."""
    import json

    from sglang.layers.quantization.errors import QuantizationError
    from sglang.layers.quantization.registry import (
        check_backend,
        check_kv_cache_dtype,
        checkpoint_quantization,
        resolve_quantization,
    )

    columns = _Columns(found)
    attention = found.backends.get(args.attention_backend or backend.name, backend)
    try:
        check_kv_cache_dtype(
            args.kv_cache_dtype, attention.name, attention.capabilities.features(), columns
        )
    except QuantizationError as e:
        raise StartupError(f"--device {backend.name}: {e}", EXIT_DEVICE) from None
    if source.is_gguf:
        if args.quantization not in (None, "int4"):
            raise StartupError(
                f"--quantization {args.quantization} does not apply to a GGUF file: its tensors "
                "are served in the file's own types (--quantization int4 re-quantizes every "
                "linear layer to int4)",
                EXIT_MODEL,
            )
        return
    declared = None
    config_path = os.path.join(source.directory, "config.json")
    if os.path.exists(config_path):
        with open(config_path) as f:
            declared = json.load(f).get("quantization_config")
    try:
        config = resolve_quantization(
            checkpoint_quantization(source.directory, declared), args.quantization
        )
        if config is None:
            return
    except QuantizationError as e:
        raise StartupError(f"--model-path {args.model_path}: {e}", EXIT_MODEL) from None
    try:
        check_backend(config, backend.name, backend.capabilities.features(), columns)
    except QuantizationError as e:
        raise StartupError(f"--device {backend.name}: {e}", EXIT_DEVICE) from None


def bind_socket(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound now (listening starts when uvicorn serves): a port
    in use fails here, in a second, rather than after the model has loaded."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto is TCP, and an
    # accepted socket inherits it. Without it Nagle holds a stream's first chunk behind the
    # unacknowledged response headers until the client's delayed ACK (40 ms on Linux).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        reason = e.strerror or str(e)
        hint = (
            "stop the process using it or pass another --port"
            if e.errno in (98, 48)  # EADDRINUSE on Linux, macOS
            else "check --host"
        )
        raise StartupError(
            f"--host {host} --port {port}: cannot bind: {reason} ({hint})", EXIT_ADDRESS
        ) from None
    sock.set_inheritable(False)
    return sock


def preflight(args):
    """Every check that needs no model load: the model path, then the device. Returns
    `check_model`'s (settings, ModelSource)."""
    args, source = check_paths(args)
    check_device_and_format(args, source)
    return args, source


def check_paths(args):
    """The checks that read only flags and files (no torch): `check_model`'s result."""
    check_parallel(args)
    args, source = check_model(args)
    check_pipeline(args, source)
    return args, source


def check_device_and_format(args, source) -> None:
    """The device, then whether its backend runs the checkpoint's format (imports torch and
    the backend plugins)."""
    from sglang.backend.discovery import discover

    found = discover()
    backend = check_device(args, found)
    check_quantization(args, source, found, backend)


def check_parallel(args) -> None:
    """The multi-node flags fit together; layouts not served yet are refused by name."""
    addr = args.dist_init_addr
    if addr is not None:
        host, _, port = addr.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65535:
            raise StartupError(f"--dist-init-addr {addr}: expected HOST:PORT", EXIT_USAGE)
    if args.nnodes == 1:
        return
    if addr is None:
        raise StartupError("--nnodes > 1 needs --dist-init-addr HOST:PORT (node 0's)", EXIT_USAGE)
    if (args.tp_size * args.pp_size) % args.nnodes:
        raise StartupError(
            f"--tp-size {args.tp_size} x --pp-size {args.pp_size} ranks do not split over "
            f"--nnodes {args.nnodes}",
            EXIT_USAGE,
        )
    if args.dp_size > 1:
        raise StartupError("--dp-size > 1 with --nnodes > 1 is not served yet", EXIT_FAILURE)


def check_pipeline(args, source) -> None:
    """--pp-size against the checkpoint's decoder layers (config.json only; a GGUF file's
    count is checked when the model is built)."""
    import json

    path = os.path.join(source.directory, "config.json")
    if getattr(args, "pp_size", 1) == 1 or source.is_gguf or not os.path.exists(path):
        return
    with open(path) as f:
        config = json.load(f)
    layers = (config.get("text_config") or config).get("num_hidden_layers")
    if isinstance(layers, int) and layers < args.pp_size:
        raise StartupError(
            f"--pp-size {args.pp_size}: the model has {layers} decoder layers, fewer than the "
            "pipeline stages (each stage needs one)",
            EXIT_USAGE,
        )


# --- failures inside the scheduler process ---------------------------------------------------
def failure_from(stage: str, exc: BaseException, model_path: str | None = None) -> StartupError:
    """A StartupError for an exception raised while the scheduler process started, by stage:
    "device" (selecting the backend), "model" (config, tokenizer) or "load" (weights, KV pool,
    graphs)."""
    from sglang.backend.selection import BackendSelectionError

    if isinstance(exc, BackendSelectionError):
        return StartupError(exc.summary, EXIT_DEVICE)
    if isinstance(exc, StartupError):
        return exc
    text = one_line(exc)
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return StartupError(
            f"out of memory while loading the model: {text} (lower "
            "--mem-fraction-static or --max-total-tokens)",
            EXIT_MEMORY,
        )
    if "KV pool" in text:
        return StartupError(text, EXIT_MEMORY)
    if stage == "device":
        return StartupError(f"the device failed to start: {text}", EXIT_DEVICE)
    if stage in ("model", "load"):
        where = f"--model-path {model_path}: " if model_path else ""
        return StartupError(f"{where}the model could not be loaded: {text}", EXIT_MODEL)
    return StartupError(f"the scheduler failed to start: {text}", EXIT_FAILURE)
