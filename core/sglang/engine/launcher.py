"""Starting and stopping the scheduler process, shared by the Engine and the HTTP server."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from sglang.engine.io import SchedulerInfo, StartupFailure
from sglang.engine.preflight import EXIT_MODEL, StartupError, one_line, preflight
from sglang.engine.tokenizer_manager import TokenizerManager
from sglang.server_args import ServerArgs

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 600

EngineStartupError = StartupError  # the name it had before the startup checks


@dataclass
class SchedulerHandle:
    proc: Any
    scheduler_in: str  # the frontend PUSHes requests here
    scheduler_out: str  # the frontend PULLs outputs from here
    ipc_dir: str
    info: SchedulerInfo | None = None
    reader: Any = None  # the pipe on which the scheduler reports readiness


def ipc_addresses() -> tuple[str, str, str]:
    ipc_dir = tempfile.mkdtemp(prefix="sglang-")
    return (
        ipc_dir,
        f"ipc://{os.path.join(ipc_dir, 'scheduler_in')}",
        f"ipc://{os.path.join(ipc_dir, 'scheduler_out')}",
    )


def start_scheduler(args: ServerArgs) -> SchedulerHandle:
    """Spawn the scheduler process; `wait_ready` then waits for it to load the model. The
    caller can load its tokenizer in between."""
    from sglang.engine.scheduler_process import run_scheduler_process

    ipc_dir, scheduler_in, scheduler_out = ipc_addresses()
    ctx = mp.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=run_scheduler_process,
        args=(args, scheduler_in, scheduler_out, writer),
        daemon=True,
        name="sglang-scheduler",
    )
    proc.start()
    writer.close()
    return SchedulerHandle(proc, scheduler_in, scheduler_out, ipc_dir, reader=reader)


def wait_ready(handle: SchedulerHandle) -> SchedulerInfo:
    """Block until the scheduler reports ready (returns its info) or fails (raises)."""
    reader, proc = handle.reader, handle.proc
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if reader.poll(0.5):
            try:
                info = reader.recv()
            except EOFError:
                break
            if isinstance(info, StartupFailure):
                stop_scheduler(handle)
                logger.debug("the scheduler process failed to start:\n%s", info.traceback)
                raise StartupError(info.error, info.exit_code)
            handle.info = info
            return info
        if not proc.is_alive():
            break
    stop_scheduler(handle)
    if proc.exitcode is None:
        raise StartupError(f"the scheduler was not ready after {STARTUP_TIMEOUT_S} s")
    killed = " (killed: out of memory?)" if proc.exitcode == -9 else ""
    raise StartupError(
        f"the scheduler process exited (code {proc.exitcode}){killed} before it was ready"
    )


@dataclass
class Launched:
    """A scheduler that reported ready, with the settings it was started with (the default
    model's path filled in), the frontend's tokenizer (None with --skip-tokenizer-init), the
    model's resolved source and the sampling defaults requests start from."""

    args: ServerArgs
    handle: SchedulerHandle
    tokenizer: Any
    info: SchedulerInfo
    source: Any
    sampling_defaults: dict[str, Any]

    def tokenizer_manager(self) -> TokenizerManager:
        """The frontend's link to the scheduler; made inside the event loop that will use it."""
        handle = self.handle
        return TokenizerManager(self.tokenizer, handle.scheduler_in, handle.scheduler_out, self.info)


def launch(args: ServerArgs) -> Launched:
    """Check the model path and device (fast, one-line StartupError), spawn the scheduler,
    load the tokenizer while it loads the model, and wait until it is ready."""
    from sglang.model_loader import load_tokenizer, sampling_defaults

    args, source = preflight(args)
    handle = start_scheduler(args)
    try:
        tokenizer = None
        if not args.skip_tokenizer_init:
            path = args.tokenizer_path or source
            try:
                tokenizer = load_tokenizer(path)
            except Exception as e:
                flag = "--tokenizer-path" if args.tokenizer_path else "--model-path"
                raise StartupError(
                    f"{flag} {args.tokenizer_path or args.model_path}: cannot load the tokenizer: "
                    f"{one_line(e)}",
                    EXIT_MODEL,
                ) from None
        info = wait_ready(handle)
    except BaseException:
        stop_scheduler(handle, timeout=0)
        raise
    defaults = sampling_defaults(source, args.sampling_defaults)
    return Launched(args, handle, tokenizer, info, source, defaults)


def stop_scheduler(handle: SchedulerHandle, timeout: float = 10) -> None:
    """Wait for the process to exit (after a shutdown message), else kill it."""
    if handle.proc.is_alive():
        handle.proc.join(timeout=timeout)
        if handle.proc.is_alive():
            handle.proc.kill()
            handle.proc.join(timeout=5)
    shutil.rmtree(handle.ipc_dir, ignore_errors=True)
