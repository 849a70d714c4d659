"""Starting and stopping the scheduler process, shared by the Engine and the HTTP server."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from multiprocessing import connection
from typing import TYPE_CHECKING, Any

from sglang.engine.io import SchedulerInfo, StartupFailure
from sglang.engine.preflight import (
    EXIT_FAILURE,
    EXIT_MODEL,
    StartupError,
    check_device_and_format,
    check_paths,
    one_line,
)
from sglang.server_args import ServerArgs

if TYPE_CHECKING:  # imports torch: the frontend needs it only once the scheduler is spawned
    from sglang.engine.tokenizer_manager import TokenizerManager

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 600

EngineStartupError = StartupError  # the name it had before the startup checks


class RankProcesses:
    """The processes of this node's replicas (and the links to the other nodes), watched as
    one: alive while every one is (a rank that dies leaves the others stuck in a collective;
    a replica that dies takes its share of the requests with it), `pid` the first
    scheduler's."""

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
        dead = [
            getattr(p, "exit_note", None) or f"{p.name} exited (code {p.exitcode})"
            for p in self.procs
            if p.exitcode is not None
        ]
        return ", ".join(dead)

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
    proc: Any  # the scheduler process, or RankProcesses for several
    scheduler_in: list[str]  # the frontend PUSHes requests here, one per replica
    scheduler_out: str  # the frontend PULLs outputs from here
    ipc_dir: str
    info: SchedulerInfo | None = None
    # (process, ready pipe, replica) of each rank: a replica's rank 0 reports its
    # SchedulerInfo, the others their rank; replica None: a follower
    starting: list[tuple[Any, Any, int | None]] = field(default_factory=list)
    nodes: Any = None  # with --nnodes > 1 on node 0: the links to the other nodes (nodes.py)
    devices: dict[int, list[int]] = field(default_factory=dict)  # replica -> its device indices
    go: list[Any] = field(default_factory=list)  # gated ranks' start pipes (see `release`)

    @property
    def procs(self) -> list[Any]:
        return self.proc.procs if isinstance(self.proc, RankProcesses) else [self.proc]


def start_ranks(
    args: ServerArgs, ipc_dir: str, scheduler_out: str | None, gated: bool = False
) -> SchedulerHandle:
    """Spawn this node's ranks (rank_process.local_ranks): each replica's rank 0 runs the
    scheduler, the others follow it. gated: each rank imports its code, then waits for
    `release(handle)` before it starts (rank_process.run_rank)."""
    from sglang.engine.rank_process import local_ranks, run_rank

    ctx = mp.get_context("spawn")
    scheduler_in, starting, devices, go = [], [], {}, []
    for replica, rank in local_ranks(args, os.path.join(ipc_dir, "rendezvous")):
        devices.setdefault(replica, []).append(rank.device_index)
        reader, writer = ctx.Pipe(duplex=False)
        go_reader, go_writer = ctx.Pipe(duplex=False) if gated else (None, None)
        if rank.rank == 0:
            scheduler_in.append(f"ipc://{os.path.join(ipc_dir, f'scheduler_in_{replica}')}")
            name = "sglang-scheduler" + (f"-dp{replica}" if args.dp_size > 1 else "")
            call = ("scheduler", go_reader, args, scheduler_in[-1], scheduler_out, writer, rank)
        else:
            name = f"sglang-rank-{rank.rank}" + (f"-dp{replica}" if args.dp_size > 1 else "")
            call = ("follower", go_reader, args, rank, writer)
        proc = ctx.Process(target=run_rank, args=call, daemon=True, name=name)
        proc.start()
        writer.close()
        if gated:
            go_reader.close()
            go.append(go_writer)
        starting.append((proc, reader, replica if rank.rank == 0 else None))
    procs = [p for p, _, _ in starting]
    proc = procs[0] if len(procs) == 1 else RankProcesses(procs)
    return SchedulerHandle(
        proc, scheduler_in, scheduler_out or "", ipc_dir, starting=starting, devices=devices,
        go=go,
    )  # fmt: skip


def release(handle: SchedulerHandle, start: bool = True) -> None:
    """Tell gated ranks to start (or, start=False, to return without starting)."""
    for pipe in handle.go:
        try:
            pipe.send(start)
        except OSError:  # the rank is gone: wait_ready reports it
            pass
        pipe.close()
    handle.go = []


def start_scheduler(args: ServerArgs, gated: bool = False) -> SchedulerHandle:
    """Spawn the schedulers (and their ranks); `wait_ready` then waits for them to load the
    model. The caller can load its tokenizer in between. gated: see `start_ranks`."""
    ipc_dir = tempfile.mkdtemp(prefix="sglang-")
    scheduler_out = f"ipc://{os.path.join(ipc_dir, 'scheduler_out')}"
    nodes = None
    if args.nnodes > 1:  # before the ranks, so that the other nodes find it listening
        from sglang.engine.nodes import NodeLinks

        nodes = NodeLinks(args)
    handle = start_ranks(args, ipc_dir, scheduler_out, gated)
    if nodes is not None:
        handle.nodes = nodes
        handle.proc = RankProcesses(handle.procs + nodes.links)
    return handle


def _exited(proc: Any, is_scheduler: bool) -> str:
    proc.join(1)
    killed = " (killed: out of memory?)" if proc.exitcode == -9 else ""
    what = "the scheduler process" if is_scheduler else proc.name
    return f"{what} exited (code {proc.exitcode}){killed} before it was ready"


def wait_ready(handle: SchedulerHandle) -> SchedulerInfo | None:
    """Block until every rank reports ready (returns replica 0's info, with the layout of
    every replica) or one fails (raises, after stopping the others)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    waiting, infos = list(handle.starting), {}
    while waiting and time.monotonic() < deadline:
        for item in list(waiting):
            proc, pipe, replica = item
            failure = None
            if pipe.poll(0):
                try:
                    status = pipe.recv()
                except EOFError:
                    status = StartupFailure(_exited(proc, replica is not None), EXIT_FAILURE, "")
                if isinstance(status, StartupFailure):
                    failure = status
                elif replica is not None:
                    infos[replica] = status
                waiting.remove(item)
            elif not proc.is_alive():
                failure = StartupFailure(_exited(proc, replica is not None), EXIT_FAILURE, "")
            if failure is not None:  # one rank that fails to start stops them all
                stop_scheduler(handle, timeout=0)
                logger.debug("%s failed to start:\n%s", proc.name, failure.traceback)
                raise StartupError(failure.error, failure.exit_code)
        if handle.nodes is not None and not handle.nodes.is_alive():
            stop_scheduler(handle, timeout=0)
            raise StartupError(f"{handle.nodes.exit_summary()} before it was ready")
        if waiting:  # until a rank reports or exits (not a fixed sleep: the ready is awaited)
            ends = [end for p, pipe, _ in waiting for end in (pipe, getattr(p, "sentinel", None))]
            connection.wait([end for end in ends if end is not None], timeout=0.1)
    if waiting:
        stop_scheduler(handle)
        raise StartupError(f"the scheduler was not ready after {STARTUP_TIMEOUT_S} s")
    if not infos:  # a node of follower ranks only
        return None
    info = with_replicas(infos, handle)
    handle.info = info
    log_layout(info)
    return info


def with_replicas(infos: dict[int, SchedulerInfo], handle: SchedulerHandle) -> SchedulerInfo:
    """Replica 0's info, with every process id and the layout of every replica."""
    pids = [p.pid for p in handle.procs if hasattr(p, "pid") and p.pid is not None]
    replicas, ranks = [], [(p, replica) for p, _, replica in handle.starting]
    for d in sorted(infos):
        first = next(i for i, (_, r) in enumerate(ranks) if r == d)
        tp = infos[d].parallel.get("ranks", 1)
        replica_pids = [p.pid for p, _ in ranks[first : first + tp]]
        replicas.append({"replica": d, "device": infos[d].device, "rank_pids": replica_pids,
                         "device_indices": handle.devices[d], "parallel": infos[d].parallel})  # fmt: skip
    return replace(infos[0], rank_pids=pids, replicas=replicas)


def log_layout(info: SchedulerInfo) -> None:
    args = info.settings
    if args.dp_size * args.tp_size * args.pp_size == 1:
        return
    logger.info(
        "parallel layout: %d replica(s) x tp %d x pp %d over %d node(s)%s",
        args.dp_size, args.tp_size, args.pp_size, args.nnodes,
        f", requests by {args.load_balance_method}" if args.dp_size > 1 else "",
    )  # fmt: skip
    for r in info.replicas:
        logger.info(
            "replica %d: %s, device indices %s (this node's), rank pids %s",
            r["replica"], r["device"], r["device_indices"], r["rank_pids"],
        )  # fmt: skip


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
        from sglang.engine.tokenizer_manager import TokenizerManager

        handle = self.handle
        return TokenizerManager(
            self.tokenizer, handle.scheduler_in, handle.scheduler_out, self.info,
            self.args.load_balance_method,
        )  # fmt: skip


def launch(args: ServerArgs, while_loading: Any = None) -> Launched:
    """Check the model path and device (fast, one-line StartupError), spawn the scheduler,
    load the tokenizer while it loads the model (and call `while_loading()` first: the
    server imports its routes there), and wait until it is ready."""
    from sglang.model_loader import load_tokenizer, sampling_defaults

    if args.node_rank > 0:
        raise StartupError(
            "--node-rank > 0 runs only that node's ranks: start it with `sglang serve`"
        )
    # The scheduler is spawned once the paths are checked: it imports torch and the model code
    # while this process checks the device (which imports torch and the backends too), and
    # starts only when that check passes (gated), so a failed check still prints one line.
    args, source = check_paths(args)
    handle = start_scheduler(args, gated=True)
    try:
        try:
            check_device_and_format(args, source)
        except BaseException:
            release(handle, start=False)
            raise
        release(handle)
        if while_loading is not None:
            while_loading()
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
    if handle.nodes is not None:
        handle.nodes.close()
    shutil.rmtree(handle.ipc_dir, ignore_errors=True)
