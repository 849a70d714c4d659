"""The executor behind a program state: a worker thread that applies expressions to the text in
submission order, so `s += sgl.gen("x")` returns at once and only reading `s["x"]` waits.

Forked states get executors of their own (threads of their own), so branches run at the same
time and reach the server together, where they are batched. A state and its forks share one
`Usage`, the record of every request the program made and how much of its prompt the server's
prefix cache served.
"""

from __future__ import annotations

import queue
import random
import threading
from dataclasses import dataclass
from typing import Any

from sglang.lang.backend.base import Backend, Prompt
from sglang.lang.chat_template import ChatTemplate
from sglang.lang.choices import decide
from sglang.lang.ir import (
    CommitPrefix,
    Constant,
    Expr,
    ExprList,
    Gen,
    GenParams,
    RoleBegin,
    RoleEnd,
    Select,
    VarScopeBegin,
    VarScopeEnd,
    named_exprs,
)


class ProgramError(RuntimeError):
    """A program failed; `state` is its ProgramState, the cause is chained."""

    def __init__(self, message: str, state: Any = None):
        super().__init__(message)
        self.state = state


@dataclass
class RequestRecord:
    kind: str  # "gen" | "select" | "prefix"
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int


class Usage:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[RequestRecord] = []

    def add(self, kind: str, meta: dict[str, Any] | None) -> None:
        if not meta:
            return
        record = RequestRecord(
            kind,
            int(meta.get("prompt_tokens") or 0),
            int(meta.get("cached_tokens") or 0),
            int(meta.get("completion_tokens") or 0),
        )
        with self._lock:
            self.requests.append(record)

    def total(self, field: str) -> int:
        with self._lock:
            return sum(getattr(r, field) for r in self.requests)


class StreamExecutor:
    def __init__(
        self,
        backend: Backend,
        arguments: dict[str, Any],
        defaults: GenParams,
        stream: bool = False,
        use_thread: bool = True,
        usage: Usage | None = None,
        chat_template: ChatTemplate | None = None,
    ):
        self.backend, self.arguments, self.defaults = backend, arguments, defaults
        self.stream = stream
        self.usage = usage or Usage()
        self.text_ = ""
        self.messages_: list[dict[str, Any]] = []
        self.variables: dict[str, Any] = {}
        self.meta_info: dict[str, Any] = {}
        self.var_events: dict[str, threading.Event] = {}
        self.unset_vars: set[str] = set()  # variables a failure left without a value
        self.cur_role: str | None = None
        self.cur_role_begin = 0
        self.role_suffix = ""
        self.scope_starts: dict[str, int] = {}
        self.fork_start = 0
        self.error_: BaseException | None = None
        self.finished = False
        self.children: list[StreamExecutor] = []
        self.cond = threading.Condition()  # notified whenever the text or a variable grows
        self._template = chat_template
        self.rng = random.Random()
        self.use_thread = use_thread
        if use_thread:
            self.queue: queue.Queue = queue.Queue()
            self.worker = threading.Thread(target=self._work, daemon=True, name="sglang-program")
            self.worker.start()

    # --- submission -----------------------------------------------------------------------
    def submit(self, expr: Expr) -> None:
        for name in named_exprs(expr):
            self.var_events[name] = threading.Event()
        if self.use_thread:
            self.queue.put(expr)
        else:
            self._execute(expr)

    def sync(self, children: bool = False) -> None:
        """Wait until everything submitted so far has run (and the forks' work too)."""
        if self.use_thread:
            self.queue.join()
        if children:
            for child in list(self.children):
                child.sync(children=True)

    def end(self) -> None:
        """No more submissions: the worker (and those of the forks) exit once done."""
        if self.use_thread and self.worker.is_alive():
            self.queue.put(None)
        elif not self.use_thread:
            self._set_finished()
        for child in list(self.children):
            child.end()

    def fail(self, error: BaseException) -> None:
        with self.cond:
            if self.error_ is None:
                self.error_ = error
            for name, event in self.var_events.items():
                if not event.is_set():
                    self.unset_vars.add(name)
                    event.set()
            self.cond.notify_all()

    def _work(self) -> None:
        while True:
            expr = self.queue.get()
            try:
                if expr is None:
                    break
                if self.error_ is None:
                    self._execute(expr)
            except BaseException as e:  # kept for the reader; later expressions are skipped
                self.fail(e)
            finally:
                self.queue.task_done()
        self._set_finished()

    def _set_finished(self) -> None:
        with self.cond:
            self.finished = True
            self.cond.notify_all()

    # --- reading ----------------------------------------------------------------------------
    def get_var(self, name: str) -> Any:
        event = self.var_events.get(name)
        if event is not None:
            event.wait()
        with self.cond:
            if name in self.unset_vars:
                raise ProgramError(f"the program failed before setting {name!r}") from (self.error_)
            if name in self.variables:
                return self.variables[name]
        raise KeyError(f"the program has no variable {name!r}")

    def set_var(self, name: str, value: Any) -> None:
        with self.cond:
            self.variables[name] = value
            self.cond.notify_all()

    def chat_template(self) -> ChatTemplate:
        if self._template is None:
            self._template = self.backend.chat_template()
        return self._template

    def prompt(self) -> Prompt:
        bos = self._template is not None and self._template.starts_with_bos(self.text_)
        role_text = self.text_[self.cur_role_begin :] if self.cur_role else ""
        return Prompt(self.text_, list(self.messages_), self.cur_role, role_text, not bos)

    # --- forks ------------------------------------------------------------------------------
    def fork(self, size: int) -> list[StreamExecutor]:
        self.sync()
        if self.error_ is not None:
            raise ProgramError("cannot fork a failed program") from self.error_
        if size > 1 and self.text_:
            self._commit_prefix()
        children = []
        for _ in range(size):
            child = StreamExecutor(
                self.backend,
                self.arguments,
                self.defaults,
                self.stream,
                self.use_thread,
                self.usage,
                self._template,
            )
            child.text_ = self.text_
            child.messages_ = list(self.messages_)
            child.variables = dict(self.variables)
            child.cur_role, child.cur_role_begin = self.cur_role, self.cur_role_begin
            child.role_suffix = self.role_suffix
            child.fork_start = len(self.text_)
            children.append(child)
        self.children.extend(children)
        return children

    # --- execution --------------------------------------------------------------------------
    def _execute(self, expr: Expr) -> None:
        if isinstance(expr, ExprList):
            for e in expr.exprs:
                self._execute(e)
        elif isinstance(expr, Constant):
            self._fill(expr.value)
        elif isinstance(expr, Gen):
            self._gen(expr)
        elif isinstance(expr, Select):
            self._select(expr)
        elif isinstance(expr, RoleBegin):
            self._role_begin(expr.role)
        elif isinstance(expr, RoleEnd):
            self._role_end(expr.role)
        elif isinstance(expr, VarScopeBegin):
            self.scope_starts[expr.name] = len(self.text_)
        elif isinstance(expr, VarScopeEnd):
            self._set(expr.name, self.text_[self.scope_starts.pop(expr.name) :], None)
        elif isinstance(expr, CommitPrefix):
            self._commit_prefix()
        else:
            raise TypeError(f"unknown expression {expr!r}")

    def _fill(self, text: str) -> None:
        with self.cond:
            self.text_ += text
            self.cond.notify_all()

    def _set(self, name: str | None, value: Any, meta: Any) -> None:
        if name is None:
            return
        with self.cond:
            self.variables[name] = value
            self.meta_info[name] = meta
            self.cond.notify_all()
        event = self.var_events.get(name)
        if event is not None:
            event.set()

    def _gen(self, expr: Gen) -> None:
        params = expr.params.merged_over(self.defaults)
        if self.backend.is_chat_model and (self.cur_role != "assistant" or self.prompt().role_text):
            raise ValueError(
                f"{type(self.backend).__name__} serves a chat model: a gen must come right "
                "after sgl.assistant_begin() (or inside sgl.assistant(...)), with no text "
                "before it in that role"
            )
        prompt = self.prompt()
        if not self.stream:
            value, meta = self.backend.generate(prompt, params)
            self._fill(value)
        else:
            value, meta = "", None
            for delta, latest in self.backend.generate_stream(prompt, params):
                value, meta = value + delta, latest
                with self.cond:
                    self.text_ += delta
                    if expr.name is not None:
                        self.variables[expr.name] = value
                    self.cond.notify_all()
        self.usage.add("gen", meta)
        self._set(expr.name, value, meta)

    def _select(self, expr: Select) -> None:
        scores = self.backend.score(self.prompt(), expr.choices)
        for meta in scores.metas:
            self.usage.add("select", meta)
        index, normalized = decide(scores.token_logprobs, expr.temperature, self.rng)
        decision = expr.choices[index]
        self._fill(decision)
        meta = {
            "normalized_prompt_logprobs": normalized,
            "input_token_logprobs": scores.token_logprobs,
            "prompt_tokens": sum(int(m.get("prompt_tokens") or 0) for m in scores.metas),
            "cached_tokens": sum(int(m.get("cached_tokens") or 0) for m in scores.metas),
        }
        self._set(expr.name, decision, meta)

    def _role_begin(self, role: str) -> None:
        if self.cur_role is not None:
            raise ValueError(f"roles do not nest: {role!r} began inside {self.cur_role!r}")
        prefix, suffix = self.chat_template().role_parts(role, self.messages_)
        self._fill(prefix)
        self.cur_role, self.cur_role_begin, self.role_suffix = role, len(self.text_), suffix

    def _role_end(self, role: str) -> None:
        if self.cur_role != role:
            raise ValueError(f"role {role!r} ended, but the open role is {self.cur_role!r}")
        content = self.text_[self.cur_role_begin :].lstrip()
        self._fill(self.role_suffix)
        self.messages_.append({"role": role, "content": content})
        self.cur_role, self.role_suffix = None, ""

    def _commit_prefix(self) -> None:
        self.usage.add("prefix", self.backend.cache_prefix(self.prompt()))
