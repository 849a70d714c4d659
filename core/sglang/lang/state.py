"""`ProgramState`, the `s` a program receives: `s += ...` appends, `s["name"]` reads a variable
(waiting only for the expressions that set it), `s.fork(n)` branches. After a run it reports
the text, the chat messages, and how many prompt tokens the server's prefix cache served."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from sglang.lang.executor import ProgramError, RequestRecord, StreamExecutor
from sglang.lang.ir import ExprList, RoleBegin, RoleEnd, VarScopeBegin, VarScopeEnd, as_expr


class ProgramState:
    def __init__(self, executor: StreamExecutor):
        self.stream_executor = executor
        self.ret_value: Any = None

    # --- appending ----------------------------------------------------------------------------
    def __iadd__(self, other: Any) -> ProgramState:
        self.stream_executor.submit(as_expr(other))
        return self

    def _role(self, role: str, expr: Any = None):
        if expr is not None:
            self.stream_executor.submit(ExprList([RoleBegin(role), as_expr(expr), RoleEnd(role)]))
            return None

        @contextmanager
        def scope():
            self.stream_executor.submit(RoleBegin(role))
            yield self
            self.stream_executor.submit(RoleEnd(role))

        return scope()

    def system(self, expr: Any = None):
        """Append a system message; without an argument, a `with` block of one."""
        return self._role("system", expr)

    def user(self, expr: Any = None):
        return self._role("user", expr)

    def assistant(self, expr: Any = None):
        return self._role("assistant", expr)

    @contextmanager
    def var_scope(self, name: str):
        """The text appended inside the block becomes variable `name`."""
        self.stream_executor.submit(VarScopeBegin(name))
        yield self
        self.stream_executor.submit(VarScopeEnd(name))

    # --- variables ----------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        return self.stream_executor.get_var(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.stream_executor.set_var(name, value)

    def __contains__(self, name: str) -> bool:
        return name in self.stream_executor.variables or name in self.stream_executor.var_events

    def get_var(self, name: str) -> Any:
        return self.stream_executor.get_var(name)

    def set_var(self, name: str, value: Any) -> None:
        self.stream_executor.set_var(name, value)

    def get_meta_info(self, name: str) -> Any:
        """The server's meta_info of the gen (or the scores of the select) that set `name`."""
        self.stream_executor.get_var(name)
        return self.stream_executor.meta_info.get(name)

    # --- branching ----------------------------------------------------------------------------
    def fork(self, size: int = 1) -> ProgramStateGroup:
        """`size` copies of this state that run concurrently; the text so far is sent once
        first (size > 1) so that every branch finds it in the prefix cache."""
        return ProgramStateGroup([ProgramState(e) for e in self.stream_executor.fork(size)], self)

    @contextmanager
    def copy(self):
        group = self.fork(1)
        try:
            yield group[0]
        finally:
            group.join()

    # --- results ------------------------------------------------------------------------------
    def sync(self) -> None:
        """Wait for everything appended so far; raises ProgramError if the program failed."""
        self.stream_executor.sync()
        self._raise_error()

    def _raise_error(self) -> None:
        error = self.stream_executor.error_
        if error is not None:
            raise ProgramError(f"the program failed: {error}", self) from error

    def error(self) -> BaseException | None:
        self.stream_executor.sync()
        return self.stream_executor.error_

    def text(self) -> str:
        self.sync()
        return self.stream_executor.text_

    def messages(self) -> list[dict[str, Any]]:
        self.sync()
        return list(self.stream_executor.messages_)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request the program (forks included) sent: kind, prompt and cached tokens."""
        self.stream_executor.sync(children=True)
        with self.stream_executor.usage._lock:
            return list(self.stream_executor.usage.requests)

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens of all the program's requests (forks included)."""
        return sum(r.prompt_tokens for r in self.requests)

    @property
    def cached_tokens(self) -> int:
        """Of those, the tokens served from the server's prefix cache."""
        return sum(r.cached_tokens for r in self.requests)

    @property
    def completion_tokens(self) -> int:
        return sum(r.completion_tokens for r in self.requests)

    # --- streaming ----------------------------------------------------------------------------
    def text_iter(self, var_name: str | None = None) -> Iterator[str]:
        """The text (or one variable) as it grows, in pieces; ends when the program (or that
        variable) is done. Without run(stream=True) it yields the final value once."""
        ex = self.stream_executor
        if not ex.stream:
            yield self.text() if var_name is None else self.get_var(var_name)
            return

        def current() -> str:
            return ex.text_ if var_name is None else str(ex.variables.get(var_name, ""))

        def done() -> bool:
            if ex.finished or ex.error_ is not None or var_name is None:
                return ex.finished or ex.error_ is not None
            event = ex.var_events.get(var_name)
            return event is not None and event.is_set()

        sent = 0
        while True:
            with ex.cond:
                ex.cond.wait_for(lambda n=sent: len(current()) > n or done())
                piece, finished = current()[sent:], done()
            if piece:
                sent += len(piece)
                yield piece
            elif finished:
                break
        self._raise_error()

    async def text_async_iter(self, var_name: str | None = None) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        pieces = self.text_iter(var_name)
        end = object()
        while (piece := await loop.run_in_executor(None, next, pieces, end)) is not end:
            yield piece

    def __repr__(self) -> str:
        return f"ProgramState({self.text()!r})"


class ProgramStateGroup:
    """The states `fork` made. `+=` appends to each (a callable gets the branch index);
    `join()` waits for them and gathers their new variables into the parent as lists."""

    def __init__(self, states: list[ProgramState], parent: ProgramState):
        self.states, self.parent = states, parent

    def __getitem__(self, i: int) -> ProgramState:
        return self.states[i]

    def __setitem__(self, i: int, value: ProgramState) -> None:
        if value is not self.states[i]:  # `forks[i] += ...` stores the same state back
            raise TypeError("fork branches cannot be replaced")

    def __len__(self) -> int:
        return len(self.states)

    def __iter__(self) -> Iterator[ProgramState]:
        return iter(self.states)

    def __iadd__(self, other: Any) -> ProgramStateGroup:
        for i, state in enumerate(self.states):
            state += other(i) if callable(other) else other
        return self

    def join(self, mode: str = "gather_variable") -> None:
        """gather_variable: each variable the branches set (and the parent had not) becomes a
        list in the parent, one value per branch. concate_and_append: the branches' new text
        is appended to the parent, in order."""
        parent = self.parent.stream_executor
        parent.sync()
        for state in self.states:
            state.sync()
        if mode == "gather_variable":
            before = set(parent.variables)
            for state in self.states:
                for name, value in state.stream_executor.variables.items():
                    if name not in before:
                        parent.variables.setdefault(name, []).append(value)
                        parent.meta_info.setdefault(name, []).append(
                            state.stream_executor.meta_info.get(name)
                        )
        elif mode == "concate_and_append":
            text = "".join(
                s.stream_executor.text_[s.stream_executor.fork_start :] for s in self.states
            )
            self.parent += text
        else:
            raise ValueError(f"unknown join mode {mode!r}: gather_variable or concate_and_append")
