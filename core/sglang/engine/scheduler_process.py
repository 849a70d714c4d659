"""The scheduler process: selects the backend, loads the model, and runs the scheduling loop,
receiving tokenized requests and sending token outputs over ZeroMQ (PULL in, PUSH out)."""

from __future__ import annotations

import atexit
import gc
import logging
import pickle
import traceback
from dataclasses import asdict, dataclass, replace
from multiprocessing import current_process
from typing import Any

import zmq

from sglang.benchmark.request_trace import mark
from sglang.engine.io import (
    AbortRequest,
    ControlReply,
    ControlRequest,
    SchedulerInfo,
    StartupFailure,
    TokenizedRequest,
)
from sglang.engine.parent_watch import exit_with_parent
from sglang.engine.preflight import failure_from, one_line
from sglang.engine.rank_process import RankInit, join_group, select_rank_platform
from sglang.engine.settings import resolve
from sglang.model_executor.model_runner import ModelRunner
from sglang.model_loader import (
    generation_defaults,
    load_model_config,
    load_tokenizer,
    resolve_source,
)
from sglang.scheduler.req import Req
from sglang.scheduler.scheduler import Scheduler
from sglang.server_args import ServerArgs

logger = logging.getLogger(__name__)

IDLE_POLL_MS = 1000
GRAMMAR_POLL_MS = 5  # while requests wait only for their grammars to compile
OUTPUT_RECONNECT_MS = 2  # how often the output socket retries its connect to the frontend


@dataclass
class StartupStage:
    """Which part of the startup is running, so that a failure says what failed."""

    name: str = "device"  # device | model | load | scheduler (see preflight.failure_from)


def build_scheduler(
    args: ServerArgs, stage: StartupStage | None = None, rank: RankInit | None = None
) -> tuple[Scheduler, SchedulerInfo]:
    """Everything the scheduler needs, in the order the log tells it. `rank`: rank 0 of a
    multi-rank replica (where the group meets)."""
    stage = stage or StartupStage()
    stage.name = "device"
    platform = select_rank_platform(args, rank)
    logger.info("backend %s (%s)", platform.name, platform.reason)
    free, total = platform.runtime.memory_info()
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
    logger.info("dtype %s (%s)", str(config.dtype).removeprefix("torch."), config.dtype_reason)
    stage.name = "load"
    runner = ModelRunner(args, platform, config, source, parallel)
    # After the weights: on a first start the frontend converts the tokenizer (a GGUF's takes
    # seconds) while this process loads them, and this load then reads its cache.
    stage.name = "model"
    tokenizer = None if args.skip_tokenizer_init else load_tokenizer(args.tokenizer_path or source)
    stage.name = "scheduler"
    eos = frozenset(config.eos_token_ids) | set(
        generation_defaults(source).get("eos_token_ids", [])
    )
    if tokenizer is not None and tokenizer.eos_token_id is not None:
        eos |= {tokenizer.eos_token_id}
    scheduler = Scheduler(args, runner, tokenizer, eos)
    # The model, tokenizer and graphs are tens of thousands of long-lived objects: moved out
    # of the collector's reach, the periodic collections a step's allocations trigger no
    # longer walk them (SGLang freezes the heap after startup too).
    gc.collect()
    gc.freeze()
    atexit.register(gc.unfreeze)  # at exit they are ordinary garbage again (no leak reports)
    logger.info(
        "scheduler: %s loop%s",
        "overlap" if scheduler.overlap else "serial",
        ""
        if scheduler.overlap
        else (
            " (--disable-overlap-schedule)"
            if args.disable_overlap_schedule
            else " (the runtime is synchronous)"
        ),
    )
    info = SchedulerInfo(
        backend=platform.name,
        device=platform.runtime.device_name(),
        kernels=runner.ops.choices,
        architecture=config.architectures[0],
        dtype=str(runner.dtype).removeprefix("torch."),
        quantization=runner.quantization,
        quantization_layers=runner.layer_methods,
        context_len=runner.context_len,
        vocab_size=config.vocab_size,
        max_total_tokens=runner.allocator.total_size,
        max_running_requests=runner.max_running_requests,
        chunked_prefill_size=args.chunked_prefill_size,
        eos_token_ids=sorted(eos),
        parallel=runner.layout,
        settings=replace(args, max_running_requests=runner.max_running_requests),
    )
    return scheduler, info


def control(scheduler: Scheduler, msg: ControlRequest) -> ControlReply:
    if msg.kind == "flush_cache":
        if scheduler.has_work():
            return ControlReply(msg.id, False, {"message": "requests are running"})
        scheduler.cache.evict(scheduler.cache.evictable_size())
        scheduler.cache.reset()
        scheduler.runner.allocator.clear()
        return ControlReply(msg.id, True)
    if msg.kind == "stats":
        kv = scheduler.kv
        total = scheduler.runner.allocator.total_size
        payload = {
            **asdict(scheduler.stats),
            "running": len(scheduler.running) + (1 if scheduler.chunked else 0),
            "waiting": len(scheduler.waiting),
            "kv_total": total,
            "kv_free": scheduler.runner.allocator.available_size(),
            "kv_cached": scheduler.cache.total_size(),
            "kv_evictable": scheduler.cache.evictable_size(),
            "kv_usage": 1 - kv.allocator.available_size() / total,
        }
        return ControlReply(msg.id, True, payload)
    if msg.kind == "check_idle":
        try:
            scheduler.check_idle()
            return ControlReply(msg.id, True)
        except (AssertionError, RuntimeError) as e:
            return ControlReply(msg.id, False, {"message": str(e)})
    return ControlReply(msg.id, False, {"message": f"unknown control {msg.kind!r}"})


def output_socket(ctx: zmq.Context, address: str) -> zmq.Socket:
    """The PUSH socket the scheduler's outputs leave by, connected to the frontend's `address`.
    The frontend binds it only once this process is ready, so the connect fails at first and
    ZeroMQ retries it every RECONNECT_IVL, 100 ms by default: a request sent right after the
    start (the Engine's first generate) had its outputs held until the next retry (~115 ms,
    then all at once). Retried every OUTPUT_RECONNECT_MS, the connection is up in time."""
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.RECONNECT_IVL, OUTPUT_RECONNECT_MS)
    push.connect(address)
    return push


def run_scheduler_process(
    args: ServerArgs, in_addr: str, out_addr: str, ready: Any, rank: RankInit | None = None
) -> None:
    name = "scheduler" if rank is None or args.dp_size == 1 else current_process().name
    logging.basicConfig(
        level=args.log_level.upper(), format=f"[{name}] %(levelname)s %(name)s: %(message)s"
    )
    exit_with_parent()  # from the start: a server killed while the model loads
    stage = StartupStage()
    try:
        scheduler, info = build_scheduler(args, stage, rank)
    except BaseException as e:  # back to the parent as one line, the traceback beside it
        failure = failure_from(stage.name, e, args.model_path)
        tb = traceback.format_exc()
        ready.send(StartupFailure(str(failure), failure.exit_code, tb))
        return
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(in_addr)
    push = output_socket(ctx, out_addr)
    ready.send(info)
    poller = zmq.Poller()
    poller.register(pull, zmq.POLLIN)
    try:
        while True:
            if scheduler.has_runnable():
                timeout = 0
            else:
                timeout = GRAMMAR_POLL_MS if scheduler.has_work() else IDLE_POLL_MS
            poller.poll(timeout)  # blocks only when idle
            outputs = []
            while True:  # drain everything that arrived
                try:
                    msg = pickle.loads(pull.recv(zmq.NOBLOCK))
                except zmq.Again:
                    break
                if isinstance(msg, TokenizedRequest):
                    mark("sched_recv")
                    out = scheduler.add_request(
                        Req(
                            rid=msg.rid,
                            prompt_ids=msg.prompt_ids,
                            params=msg.params,
                            eos_ids=scheduler.eos_ids,
                            return_logprob=msg.return_logprob,
                            logprob_start_len=msg.logprob_start_len,
                            top_logprobs_num=msg.top_logprobs_num,
                            priority=msg.priority,
                        )
                    )
                    if out is not None:
                        outputs.append(out)
                elif isinstance(msg, AbortRequest):
                    out = scheduler.abort(msg.rid)
                    if out is not None:
                        outputs.append(out)
                elif isinstance(msg, ControlRequest):
                    if msg.kind == "shutdown":
                        return
                    push.send(pickle.dumps(control(scheduler, msg)))
            if scheduler.has_work():
                outputs += scheduler.step()
            if outputs:
                data = pickle.dumps(outputs)
                mark("sched_send")
                push.send(data)
    except KeyboardInterrupt:
        pass
    finally:
        if scheduler.grammars is not None:
            scheduler.grammars.shutdown()
        try:
            scheduler.runner.close()  # the other ranks of the replica stop
        except RuntimeError as e:  # a rank is gone: nothing to stop there
            logger.warning("the other ranks were not stopped: %s", one_line(e))
        scheduler.runner.parallel.close()
        pull.close(0)
        push.close(0)
        ctx.term()
