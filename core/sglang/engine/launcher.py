"""Starting and stopping the scheduler process, shared by the Engine and the HTTP server."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from typing import Any

from sglang.engine.io import SchedulerInfo, StartupFailure
from sglang.engine.preflight import EXIT_FAILURE, EXIT_MODEL, StartupError, one_line, preflight
from sglang.engine.tokenizer_manager import TokenizerManager
from sglang.server_args import ServerArgs

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 600

EngineStartupError = StartupError  # the name it had before the startup checks


class RankProcesses:
    """The processes of a multi-rank replica, watched as one: alive while every rank is (a
    rank that dies leaves the others stuck in a collective), `pid` rank 0's."""

    def __init__(self, procs: list[Any]) -> None:
        self.procs = procs

    @property
    def pid(self) -> int:
        return self.procs[0].pid

    def is_alive(self) -> bool:
        return all(p.is_alive() for p in self.procs)

    @property
    def exitcode(self) -> int | None:
        return next((p.exitcode for p in self.procs if p.exitcode is not None), None)

    def exit_summary(self) -> str:
        dead = [f"rank {i} (code {p.exitcode})" for i, p in enumerate(self.procs)
                if p.exitcode is not None]
        return "the scheduler's " + ", ".join(dead) + " exited"

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for p in self.procs:
            p.join(None if deadline is None else max(deadline - time.monotonic(), 0))

    def kill(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.kill()


@dataclass
class SchedulerHandle:
    proc: Any  # the scheduler process, or RankProcesses for a multi-rank replica
    scheduler_in: str  # the frontend PUSHes requests here
    scheduler_out: str  # the frontend PULLs outputs from here
    ipc_dir: str
    info: SchedulerInfo | None = None
    reader: Any = None  # the pipe on which the scheduler reports readiness
    followers: list[tuple[Any, Any]] = field(default_factory=list)  # (process, pipe) of ranks 1..

    @property
    def procs(self) -> list[Any]:
        return self.proc.procs if isinstance(self.proc, RankProcesses) else [self.proc]


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
    from sglang.engine.rank_process import RankInit, rendezvous_url, run_follower_process
    from sglang.engine.scheduler_process import run_scheduler_process

    ipc_dir, scheduler_in, scheduler_out = ipc_addresses()
    ctx = mp.get_context("spawn")
    url = rendezvous_url(args, os.path.join(ipc_dir, "rendezvous"))
    world = args.tp_size * args.pp_size  # rank r: stage r // tp, TP rank r % tp
    ranks = [RankInit(r, url, args.base_gpu_id + r) for r in range(world)]
    reader, writer = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=run_scheduler_process,
        args=(args, scheduler_in, scheduler_out, writer, ranks[0] if world > 1 else None),
        daemon=True,
        name="sglang-scheduler",
    )
    proc.start()
    writer.close()
    followers = []
    for rank in ranks[1:]:
        follower_reader, follower_writer = ctx.Pipe(duplex=False)
        follower = ctx.Process(
            target=run_follower_process,
            args=(args, rank, follower_writer),
            daemon=True,
            name=f"sglang-rank-{rank.rank}",
        )
        follower.start()
        follower_writer.close()
        followers.append((follower, follower_reader))
    handle_proc = RankProcesses([proc] + [p for p, _ in followers]) if followers else proc
    return SchedulerHandle(
        handle_proc, scheduler_in, scheduler_out, ipc_dir, reader=reader, followers=followers
    )


def wait_ready(handle: SchedulerHandle) -> SchedulerInfo:
    """Block until the scheduler reports ready (returns its info) or fails (raises)."""
    reader, proc = handle.reader, handle.proc
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    waiting = list(handle.followers)
    while time.monotonic() < deadline:
        for follower in list(waiting):  # a rank that fails to start stops the whole replica
            if follower[1].poll(0):
                try:
                    status = follower[1].recv()
                except EOFError:
                    error = f"{follower[0].name} exited before it was ready"
                    status = StartupFailure(error, EXIT_FAILURE, "")
                if isinstance(status, StartupFailure):
                    stop_scheduler(handle, timeout=0)
                    logger.debug("a rank failed to start:\n%s", status.traceback)
                    raise StartupError(status.error, status.exit_code)
                waiting.remove(follower)
        if reader.poll(0.5):
            try:
                info = reader.recv()
            except EOFError:
                break
            if isinstance(info, StartupFailure):
                stop_scheduler(handle)
                logger.debug("the scheduler process failed to start:\n%s", info.traceback)
                raise StartupError(info.error, info.exit_code)
            info = replace(info, rank_pids=[p.pid for p in handle.procs])  # rank r's
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
    """Wait for the processes to exit (after a shutdown message), else kill them."""
    deadline = time.monotonic() + timeout
    for proc in handle.procs:
        if proc.is_alive():
            proc.join(timeout=max(deadline - time.monotonic(), 0))
    for proc in handle.procs:
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
    shutil.rmtree(handle.ipc_dir, ignore_errors=True)
