"""Running programs: one (`run_program`, optionally streaming) or a batch on a thread pool
(`run_program_batch`), whose shared prefix is traced and sent once first."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sglang.lang.backend.base import Backend
from sglang.lang.executor import ProgramError, StreamExecutor
from sglang.lang.ir import GenParams
from sglang.lang.state import ProgramState
from sglang.lang.tracer import traced_prefix

logger = logging.getLogger(__name__)

MIN_BATCH_PREFIX_CHARS = 64  # shorter shared prefixes are not worth a request of their own


def run_program(
    func: Any,
    backend: Backend,
    args: tuple,
    kwargs: dict[str, Any],
    defaults: GenParams,
    stream: bool = False,
    raise_errors: bool = True,
) -> ProgramState:
    """Run `func(state, *args, **kwargs)`. Without stream, returns when all its work (forks
    included) is done, raising ProgramError if it failed (unless raise_errors is False: then
    `state.error()` tells). With stream, returns at once; read it with `state.text_iter()`."""
    executor = StreamExecutor(backend, kwargs, defaults, stream=stream)
    state = ProgramState(executor)

    def body() -> None:
        try:
            state.ret_value = func(state, *args, **kwargs)
        except BaseException as e:  # the program's own code failed
            executor.sync()
            executor.fail(e)
        finally:
            executor.end()

    if stream:
        threading.Thread(target=body, daemon=True, name="sglang-program-body").start()
        return state
    body()
    executor.sync(children=True)
    if raise_errors and executor.error_ is not None:
        raise ProgramError(f"the program failed: {executor.error_}", state) from executor.error_
    return state


def run_program_batch(
    func: Any,
    backend: Backend,
    arg_names: list[str],
    batch: list[dict[str, Any]],
    defaults: GenParams,
    num_threads: int | str = "auto",
    progress_bar: bool = False,
) -> list[ProgramState]:
    """Run func once per kwargs dict, concurrently. A failed program does not stop the
    others: its state's `error()` says why."""
    if len(batch) > 1:
        prefix = traced_prefix(func, backend, arg_names, batch)
        if len(prefix.text) >= MIN_BATCH_PREFIX_CHARS:
            meta = backend.cache_prefix(prefix)
            logger.debug("batch prefix sent once: %s", meta)
    if num_threads == "auto":
        num_threads = max(96, multiprocessing.cpu_count() * 16)
    num_threads = max(1, min(int(num_threads), len(batch)))

    def one(kwargs: dict[str, Any]) -> ProgramState:
        return run_program(func, backend, (), kwargs, defaults, raise_errors=False)

    bar = None
    if progress_bar:
        from tqdm import tqdm

        bar = tqdm(total=len(batch))
    try:
        with ThreadPoolExecutor(num_threads) as pool:
            futures = [pool.submit(one, kwargs) for kwargs in batch]
            if bar is not None:
                for f in futures:
                    f.add_done_callback(lambda _: bar.update())
            return [f.result() for f in futures]
    finally:
        if bar is not None:
            bar.close()
