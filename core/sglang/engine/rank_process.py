"""The ranks of a replica: which run on this node, where each joins its group, and the
followers' process.

Rank 0 is the scheduler process (scheduler_process.py), with a `RankInit` telling it where
the group meets; ranks 1.. run `run_follower_process`: the same device selection and model
load on their own device, then `sglang.parallel.plan.follow` until rank 0 stops. Every rank
exits when the process that spawned it dies (parent_watch).

Placement (`local_ranks`), as SGLang's: a replica has world = tp x pp ranks; on one node,
replica d's rank r uses device base_gpu_id + d * world + r, and each replica meets in its own
rendezvous; with --nnodes N the ranks of the one replica are split evenly over the nodes in
order (node n holds ranks n * world / N ..), each node's first on device base_gpu_id, all
meeting at --dist-init-addr.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from dataclasses import dataclass
from multiprocessing import current_process
from typing import TYPE_CHECKING, Any

from sglang.engine.io import StartupFailure
from sglang.engine.parent_watch import exit_with_parent
from sglang.engine.preflight import failure_from
from sglang.server_args import ServerArgs

if TYPE_CHECKING:  # torch and the backends: imported by the rank processes, not the parent
    from sglang.backend.selection import Platform
    from sglang.parallel.state import ParallelState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankInit:
    rank: int  # in the replica: stage * tp_size + tp rank
    init_method: str  # torch.distributed rendezvous URL, the same for every rank
    device_index: int


def rendezvous_url(args: ServerArgs, rendezvous_file: str, replica: int = 0) -> str:
    """Replica `replica`'s rendezvous URL: --dist-init-addr's host:port (+ replica) over TCP,
    else a file (one machine)."""
    if args.dist_init_addr:
        host, port = args.dist_init_addr.rsplit(":", 1)
        return f"tcp://{host}:{int(port) + replica}"
    return f"file://{rendezvous_file}-{replica}"


def local_ranks(args: ServerArgs, rendezvous_file: str) -> list[tuple[int, RankInit]]:
    """(replica, RankInit) of every rank this node runs, each replica's rank 0 first."""
    world = args.tp_size * args.pp_size  # a replica's ranks: stage r // tp, TP rank r % tp
    if args.nnodes > 1:
        per_node = world // args.nnodes
        first = args.node_rank * per_node
        url = rendezvous_url(args, rendezvous_file)
        return [(0, RankInit(first + i, url, args.base_gpu_id + i)) for i in range(per_node)]
    return [
        (
            d,
            RankInit(r, rendezvous_url(args, rendezvous_file, d), args.base_gpu_id + d * world + r),
        )  # fmt: skip
        for d in range(args.dp_size)
        for r in range(world)
    ]


def run_rank(target: str, go: Any, *call: Any) -> None:
    """A rank process's entry (`target`: "scheduler" or "follower"). It first imports what it
    runs (torch, the backends, the model code: seconds, and silent), so the parent spawns it
    before its own device checks; with `go` (a pipe end) it then waits for the parent to say
    those passed (True) before it starts, and returns quietly otherwise (False, or the parent
    gone), so a failed check prints the parent's one line only."""
    from sglang.engine.scheduler_process import run_scheduler_process

    if go is not None:
        try:
            start = go.recv()
        except (EOFError, OSError):
            return
        finally:
            go.close()
        if not start:
            return
    run = run_scheduler_process if target == "scheduler" else run_follower_process
    run(*call)
    # Stopped cleanly (sockets, groups and pipes closed): skip the interpreter's teardown,
    # which frees the model, the KV pool and every torch object one by one (5 s of CPU for
    # SmolLM2 on a busy 2-core VM, which `Engine.shutdown` waits for). multiprocessing's own
    # exit work runs first, as after any target.
    from multiprocessing import util

    util._exit_function()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def select_rank_platform(args: ServerArgs, rank: RankInit | None) -> Platform:
    from sglang.backend.selection import select_platform

    platform = select_platform(args.device)
    if rank is not None:
        platform.device_index = rank.device_index
    return platform


def join_group(args: ServerArgs, platform: Platform, rank: RankInit | None) -> ParallelState:
    from sglang.parallel.state import SINGLE, init_parallel

    if rank is None or args.tp_size * args.pp_size == 1:
        return SINGLE
    state = init_parallel(
        platform.backend,
        rank.rank,
        args.tp_size,
        rank.init_method,
        pp_size=args.pp_size,
        device_index=rank.device_index,
        ep_size=args.ep_size,
    )
    logger.info("joined the group: %s", state.describe())
    return state


def load_follower(args: ServerArgs, rank: RankInit, stage) -> Any:
    """A follower's model runner (the same resolution of the settings as rank 0's)."""
    from sglang.engine.settings import resolve
    from sglang.model_executor.model_runner import ModelRunner
    from sglang.model_loader import load_model_config, resolve_source

    stage.name = "device"
    platform = select_rank_platform(args, rank)
    _, total = platform.runtime.memory_info()
    defaults = platform.backend.server_defaults(total_memory_bytes=total)
    args = resolve(args, defaults)
    parallel = join_group(args, platform, rank)
    stage.name = "model"
    source = resolve_source(args.model_path)
    config = load_model_config(
        source,
        args.dtype,
        trust_remote_code=args.trust_remote_code,
        preferred=defaults.preferred_dtype(source.is_gguf),
    )
    stage.name = "load"
    return ModelRunner(args, platform, config, source, parallel)


def run_follower_process(args: ServerArgs, rank: RankInit, ready: Any) -> None:
    from sglang.engine.scheduler_process import StartupStage
    from sglang.parallel.plan import follow

    logging.basicConfig(
        level=args.log_level.upper(),
        format=f"[{current_process().name}] %(levelname)s %(name)s: %(message)s",
    )
    exit_with_parent()
    stage = StartupStage()
    try:
        runner = load_follower(args, rank, stage)
    except BaseException as e:
        failure = failure_from(stage.name, e, args.model_path)
        error = f"rank {rank.rank}: {failure}"
        ready.send(StartupFailure(error, failure.exit_code, traceback.format_exc()))
        return
    ready.send(rank.rank)  # ready
    try:
        steps = follow(runner)
        logger.info("rank 0 stopped after %d forwards", steps)
    except KeyboardInterrupt:
        pass
    finally:
        runner.parallel.close()
