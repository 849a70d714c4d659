"""`@sgl.function`: a Python function whose first parameter is the program state."""

from __future__ import annotations

import inspect
from typing import Any

from sglang.lang.backend.base import Backend
from sglang.lang.ir import GenParams
from sglang.lang.state import ProgramState


class SglFunction:
    def __init__(self, func: Any, bind_arguments: dict[str, Any] | None = None):
        params = list(inspect.signature(func).parameters.values())
        if not params or params[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise TypeError(f"{func.__name__}: the first parameter must take the state (s)")
        self.func = func
        self.arg_names = [p.name for p in params[1:]]
        self.bind_arguments = dict(bind_arguments or {})
        self.__name__ = getattr(func, "__name__", "program")
        self.__doc__ = func.__doc__

    def bind(self, **kwargs: Any) -> SglFunction:
        """The same program with some arguments fixed."""
        unknown = sorted(set(kwargs) - set(self.arg_names))
        if unknown:
            raise TypeError(f"{self.__name__} has no argument(s) {', '.join(unknown)}")
        return SglFunction(self.func, {**self.bind_arguments, **kwargs})

    def run(
        self,
        *args: Any,
        max_new_tokens: int | None = 128,
        stop: str | list[str] | None = None,
        stop_token_ids: list[int] | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        min_p: float | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        ignore_eos: bool | None = None,
        return_logprob: bool | None = None,
        logprob_start_len: int | None = None,
        top_logprobs_num: int | None = None,
        stream: bool = False,
        backend: Backend | None = None,
        **kwargs: Any,
    ) -> ProgramState:
        """Run the program once. The sampling arguments are defaults for its gens (unset ones:
        the server's). stream=True returns at once; iterate `state.text_iter()`."""
        from sglang.lang.api import resolve_backend
        from sglang.lang.interpreter import run_program

        defaults = _run_defaults(locals())
        kwargs = {**self.bind_arguments, **kwargs}
        return run_program(
            self.func, resolve_backend(backend), args, kwargs, defaults, stream=stream
        )

    def run_batch(
        self,
        batch_kwargs: list[dict[str, Any]] | list[tuple],
        *,
        max_new_tokens: int | None = 128,
        stop: str | list[str] | None = None,
        stop_token_ids: list[int] | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        min_p: float | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        ignore_eos: bool | None = None,
        return_logprob: bool | None = None,
        logprob_start_len: int | None = None,
        top_logprobs_num: int | None = None,
        backend: Backend | None = None,
        num_threads: int | str = "auto",
        progress_bar: bool = False,
    ) -> list[ProgramState]:
        """Run the program once per entry (a kwargs dict, or a tuple of positional values),
        `num_threads` at a time. The prefix all entries share is sent once first."""
        from sglang.lang.api import resolve_backend
        from sglang.lang.interpreter import run_program_batch

        if not batch_kwargs:
            return []
        batch = [self._as_kwargs(entry) for entry in batch_kwargs]
        defaults = _run_defaults(locals())
        return run_program_batch(
            self.func,
            resolve_backend(backend),
            self.arg_names,
            batch,
            defaults,
            num_threads,
            progress_bar,
        )

    def _as_kwargs(self, entry: dict[str, Any] | tuple | list) -> dict[str, Any]:
        if isinstance(entry, dict):
            kwargs = dict(entry)
        elif isinstance(entry, (tuple, list)):
            if len(entry) > len(self.arg_names):
                raise TypeError(f"{self.__name__} takes {len(self.arg_names)} arguments")
            kwargs = dict(zip(self.arg_names, entry))
        else:
            raise TypeError("run_batch takes a list of kwargs dicts or of argument tuples")
        return {**self.bind_arguments, **kwargs}

    def __call__(self, *args: Any, **kwargs: Any) -> ProgramState:
        return self.run(*args, **kwargs)


# The generation defaults `run` and `run_batch` take as keyword arguments (SGLang's signature).
_RUN_DEFAULT_NAMES = (
    "max_new_tokens",
    "stop",
    "stop_token_ids",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "frequency_penalty",
    "presence_penalty",
    "ignore_eos",
    "return_logprob",
    "logprob_start_len",
    "top_logprobs_num",
)


def _run_defaults(arguments: dict[str, Any]) -> GenParams:
    """The program-wide GenParams from a `run` / `run_batch` call's arguments."""
    return GenParams(**{name: arguments[name] for name in _RUN_DEFAULT_NAMES})
