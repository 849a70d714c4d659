"""`sglang.Engine`: the in-process API. The scheduler (model, KV cache, batching) runs in a child
process; this object tokenizes, sends, detokenizes, and returns SGLang-shaped results.

    engine = sglang.Engine(model_path=..., device="xeon")
    engine.generate("The capital of France is", {"max_new_tokens": 16, "temperature": 0})
    engine.shutdown()

`Engine()` with no model path serves the embedded default model (SmolLM2-135M-Instruct).
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import gc
import logging
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from sglang.engine.launcher import launch, stop_scheduler
from sglang.engine.settings import settings_from_kwargs
from sglang.sampling.params import SamplingParams

if TYPE_CHECKING:  # imports torch: not before the scheduler process is spawned (launcher)
    from sglang.engine.tokenizer_manager import TokenizerManager

logger = logging.getLogger(__name__)
_exit_freeze: list[bool] = []  # registered once per process


def _freeze_heap_at_exit() -> None:
    """At interpreter exit (an atexit handler): the heap out of the collector's reach. The
    interpreter's teardown runs full collections over every object left (torch, transformers,
    the tokenizer: ~200k objects, 0.3-0.8 s on a 2-core VM, the last step of a script that
    used an Engine); frozen, they are walked no more. Atexit handlers and weakref finalizers
    still run and objects freed by reference count are still freed; only objects that reference
    cycles keep alive stay unfreed, as Python leaves `__del__` of objects alive at exit
    unpromised. Not where a nanobind extension is loaded (triton's): nanobind prints every
    instance left at its teardown as a leak."""
    if not _nanobind_loaded():
        gc.freeze()


def _nanobind_loaded() -> bool:
    for module in list(sys.modules.values()):
        if not (getattr(module, "__file__", None) or "").endswith((".so", ".pyd")):
            continue
        if any(type(v).__name__.startswith("nb_") for v in list(vars(module).values())):
            return True
    return False


class Engine:
    def __init__(self, model_path: str | None = None, device: str = "auto", **server_args: Any):
        self.args = settings_from_kwargs(model_path=model_path, device=device, **server_args)
        # A bad model path or device raises StartupError (one line) before anything loads.
        launched = launch(self.args)
        self.args, self.info = launched.args, launched.info
        self._handle, self.server_info = launched.handle, launched.info.as_dict()
        self.tokenizer = launched.tokenizer
        self.sampling_defaults = launched.sampling_defaults

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="sglang-engine"
        )
        self._thread.start()

        async def make_manager() -> TokenizerManager:
            manager = launched.tokenizer_manager()
            if len(self._handle.procs) > 1:  # a dead rank fails requests instead of hanging
                manager.watch(self._handle.proc)
            return manager

        self.manager = self._run(make_manager())
        self._closed = False
        if not _exit_freeze:
            _exit_freeze.append(True)
            atexit.register(_freeze_heap_at_exit)

    def _run(self, coro, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- generation ------------------------------------------------------------------------
    def _requests(
        self, prompt, input_ids, sampling_params
    ) -> list[tuple[list[int], SamplingParams]]:
        """Normalise single/batch prompts and per-prompt params, expanding n into copies."""
        if (prompt is None) == (input_ids is None):
            raise ValueError("give exactly one of prompt or input_ids")
        if prompt is not None:
            prompts = [prompt] if isinstance(prompt, str) else list(prompt)
            ids = [self.manager.encode(p) for p in prompts]
        else:
            ids = (
                [list(input_ids)]
                if input_ids and isinstance(input_ids[0], int)
                else [list(x) for x in input_ids]
            )
        if isinstance(sampling_params, list):
            if len(sampling_params) != len(ids):
                raise ValueError("sampling_params list must match the number of prompts")
            plist = sampling_params
        else:
            plist = [sampling_params] * len(ids)
        out = []
        for prompt_ids, user in zip(ids, plist):
            p = {**self.sampling_defaults, **(user or {})}
            params = SamplingParams.from_dict(p, self.info.vocab_size)
            self.manager.check_constraint(params)
            seed = params.sampling_seed
            for i in range(params.n):
                copy = dataclasses.replace(params, n=1)
                if seed is not None:
                    copy.sampling_seed = seed + i
                out.append((prompt_ids, copy))
        return out

    def _is_batch(self, prompt, input_ids, sampling_params) -> bool:
        if prompt is not None:
            batch = not isinstance(prompt, str)
        else:
            batch = bool(input_ids) and not isinstance(input_ids[0], int)
        n = (sampling_params or {}).get("n", 1) if isinstance(sampling_params, dict) else 1
        return batch or n > 1

    async def _collect(self, prompt_ids, params, kw) -> dict[str, Any]:
        last = None
        async for chunk in self.manager.generate_one(prompt_ids, params, **kw):
            last = chunk
        return last.to_dict()

    def generate(
        self,
        prompt: str | list[str] | None = None,
        sampling_params: dict | list[dict] | None = None,
        input_ids: list[int] | list[list[int]] | None = None,
        return_logprob: bool = False,
        logprob_start_len: int | None = None,
        top_logprobs_num: int = 0,
        stream: bool = False,
        priority: int | None = None,
    ) -> dict[str, Any] | list[dict[str, Any]] | Iterator[dict[str, Any]]:
        reqs = self._requests(prompt, input_ids, sampling_params)
        kw = dict(
            return_logprob=return_logprob,
            logprob_start_len=logprob_start_len,
            top_logprobs_num=top_logprobs_num,
            priority=priority,
        )
        if stream:
            if len(reqs) != 1:
                raise ValueError("stream=True takes a single prompt with n=1")
            return self._stream_sync(reqs[0], kw)

        async def run_all():
            return await asyncio.gather(*(self._collect(ids, p, kw) for ids, p in reqs))

        results = self._run(run_all())
        return results if self._is_batch(prompt, input_ids, sampling_params) else results[0]

    def _stream_sync(self, req, kw) -> Iterator[dict[str, Any]]:
        queue: asyncio.Queue = asyncio.Queue()
        done = object()

        async def pump():
            try:
                async for chunk in self.manager.generate_one(req[0], req[1], **kw):
                    await queue.put(chunk.to_dict())
            finally:
                await queue.put(done)

        fut = asyncio.run_coroutine_threadsafe(pump(), self._loop)
        try:
            while True:
                item = self._run(queue.get())
                if item is done:
                    break
                yield item
        finally:
            if not fut.done():
                fut.cancel()
        fut.result()

    async def async_generate(
        self,
        prompt: str | None = None,
        sampling_params: dict | None = None,
        input_ids: list[int] | None = None,
        return_logprob: bool = False,
        logprob_start_len: int | None = None,
        top_logprobs_num: int = 0,
        stream: bool = False,
        priority: int | None = None,
    ) -> dict[str, Any] | AsyncIterator[dict[str, Any]]:
        """Awaitable result, or (stream=True) an async iterator of chunks, in the caller's loop."""
        reqs = self._requests(prompt, input_ids, sampling_params)
        kw = dict(
            return_logprob=return_logprob,
            logprob_start_len=logprob_start_len,
            top_logprobs_num=top_logprobs_num,
            priority=priority,
        )
        if not stream:
            futs = [
                asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(self._collect(i, p, kw), self._loop)
                )
                for i, p in reqs
            ]
            results = await asyncio.gather(*futs)
            return results if len(results) > 1 else results[0]
        if len(reqs) != 1:
            raise ValueError("stream=True takes a single prompt with n=1")
        return self._stream_async(reqs[0], kw)

    async def _stream_async(self, req, kw) -> AsyncIterator[dict[str, Any]]:
        caller = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        done = object()

        async def pump():
            try:
                async for chunk in self.manager.generate_one(req[0], req[1], **kw):
                    caller.call_soon_threadsafe(queue.put_nowait, chunk.to_dict())
            finally:
                caller.call_soon_threadsafe(queue.put_nowait, done)

        fut = asyncio.run_coroutine_threadsafe(pump(), self._loop)
        try:
            while (item := await queue.get()) is not done:
                yield item
        finally:
            if not fut.done():
                fut.cancel()

    # --- control ---------------------------------------------------------------------------
    def flush_cache(self) -> bool:
        return self._run(self.manager.control("flush_cache")).ok

    def get_stats(self) -> dict[str, Any]:
        return self._run(self.manager.control("stats")).payload

    def check_idle(self) -> None:
        """Raises when the scheduler, idle, still holds KV slots or request rows."""
        reply = self._run(self.manager.control("check_idle"))
        if not reply.ok:
            raise RuntimeError(reply.payload.get("message"))

    def shutdown(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        try:
            self._run(self.manager.send_shutdown(), timeout=5)
        except Exception:
            pass
        self._teardown()

    def _teardown(self) -> None:
        stop_scheduler(self._handle)
        try:
            self._run(self.manager.aclose(), timeout=5)
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def __del__(self) -> None:
        try:
            self.shutdown()
        except Exception:
            pass
