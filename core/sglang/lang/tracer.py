"""The text every run of a program starts with, found by running it without a model: the
arguments that differ across a batch are placeholders, and tracing stops at the first thing
that needs one, or needs the model (gen, select, fork, reading a variable). run_batch sends
that prefix once before the batch so every program finds it in the prefix cache."""

from __future__ import annotations

from typing import Any

from sglang.lang.backend.base import Backend, Prompt
from sglang.lang.executor import StreamExecutor
from sglang.lang.ir import GenParams


class StopTracing(BaseException):
    """Raised where the traced program needs a real value (a BaseException, so a program's
    own `except Exception` does not swallow it)."""


class Placeholder:
    """An argument whose value differs across the batch: any use of it ends the trace."""

    def __init__(self, name: str):
        self._name = name

    def _stop(self, *args: Any, **kwargs: Any) -> Any:
        raise StopTracing(self._name)

    __str__ = __format__ = __add__ = __radd__ = __getitem__ = __iter__ = __len__ = _stop
    __bool__ = __int__ = __float__ = __eq__ = __lt__ = __contains__ = __getattr__ = _stop
    __hash__ = None  # type: ignore[assignment]


class TracingBackend(Backend):
    """Renders roles like the real backend; anything that needs the model stops the trace."""

    def __init__(self, backend: Backend):
        self.backend, self.is_chat_model = backend, backend.is_chat_model

    def chat_template(self):
        return self.backend.chat_template()

    def generate(self, prompt: Prompt, params: GenParams):
        raise StopTracing("gen")

    def score(self, prompt: Prompt, choices: list[str]):
        raise StopTracing("select")

    def cache_prefix(self, prompt: Prompt):
        raise StopTracing("fork")


def traced_prefix(
    func: Any, backend: Backend, arg_names: list[str], batch: list[dict[str, Any]]
) -> Prompt:
    """The prompt all the batch's programs share at their start (possibly empty)."""
    kwargs: dict[str, Any] = {}
    for name in arg_names:
        values = [b[name] for b in batch if name in b]
        if not values:
            continue  # every program takes the default
        same = len(values) == len(batch) and _all_equal(values)
        kwargs[name] = values[0] if same else Placeholder(name)
    executor = StreamExecutor(TracingBackend(backend), kwargs, GenParams(), use_thread=False)
    from sglang.lang.state import ProgramState

    state = ProgramState(executor)
    try:
        func(state, **kwargs)
    except StopTracing:
        pass
    except Exception:  # the program needed something tracing cannot give; the text so far
        pass
    return executor.prompt()


def _all_equal(values: list[Any]) -> bool:
    try:
        return all(v is values[0] or v == values[0] for v in values[1:])
    except Exception:  # values that cannot be compared (arrays...) count as different
        return False
