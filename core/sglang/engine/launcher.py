"""Starting and stopping the scheduler process, shared by the Engine and the HTTP server."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from sglang.engine.scheduler_process import run_scheduler_process
from sglang.server_args import ServerArgs

STARTUP_TIMEOUT_S = 600


class EngineStartupError(RuntimeError):
    pass


@dataclass
class SchedulerHandle:
    proc: Any
    scheduler_in: str  # the frontend PUSHes requests here
    scheduler_out: str  # the frontend PULLs outputs from here
    ipc_dir: str
    info: dict[str, Any] = field(default_factory=dict)
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


def wait_ready(handle: SchedulerHandle) -> dict[str, Any]:
    """Block until the scheduler reports ready (returns its info) or fails (raises)."""
    reader, proc = handle.reader, handle.proc
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if reader.poll(0.5):
            try:
                info = reader.recv()
            except EOFError:
                break
            if "error" in info:
                stop_scheduler(handle)
                raise EngineStartupError(f"the scheduler failed to start:\n{info['error']}")
            handle.info = info
            return info
        if not proc.is_alive():
            break
    stop_scheduler(handle)
    raise EngineStartupError(
        f"the scheduler process exited (code {proc.exitcode}) before it was ready"
    )


def stop_scheduler(handle: SchedulerHandle, timeout: float = 10) -> None:
    """Wait for the process to exit (after a shutdown message), else kill it."""
    if handle.proc.is_alive():
        handle.proc.join(timeout=timeout)
        if handle.proc.is_alive():
            handle.proc.kill()
            handle.proc.join(timeout=5)
    shutil.rmtree(handle.ipc_dir, ignore_errors=True)
