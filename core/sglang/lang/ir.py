"""The expressions a program appends to its state: text, generations, choices, roles, variable
scopes. They are plain records; the executor (`executor.py`) gives them meaning.

`a + b` of expressions (or of an expression and a str) is an `ExprList`, executed in order, so
`s += "Answer: " + sgl.gen("answer")` is one submission.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Any

REGEX_INT = r"[-+]?[0-9]+"
REGEX_FLOAT = r"[-+]?[0-9]*\.?[0-9]+"
REGEX_BOOL = r"(True|False)"
REGEX_STR = r"\"[\w\d\s]*\""


@dataclass
class GenParams:
    """Sampling parameters of one `gen`, named as the server's sampling_params. None means
    "not set here": the program's defaults (from `run(...)`) fill it, then the server's."""

    max_new_tokens: int | None = None
    min_new_tokens: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None
    ignore_eos: bool | None = None
    regex: str | None = None
    json_schema: str | None = None
    return_logprob: bool | None = None
    logprob_start_len: int | None = None
    top_logprobs_num: int | None = None

    def merged_over(self, defaults: GenParams) -> GenParams:
        """These parameters, with the unset ones taken from `defaults`."""
        mine = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(defaults, **{k: v for k, v in mine.items() if v is not None})

    def sampling_params(self) -> dict[str, Any]:
        """The server's `sampling_params` object: the set fields, logprob fields excluded."""
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) is not None and f.name not in LOGPROB_FIELDS
        }
        if isinstance(out.get("stop"), str):
            out["stop"] = [out["stop"]]
        return out

    def logprob_fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in LOGPROB_FIELDS if getattr(self, k) is not None}


LOGPROB_FIELDS = ("return_logprob", "logprob_start_len", "top_logprobs_num")


class Expr:
    """Something that can be appended to a program state."""

    def __add__(self, other: Any) -> ExprList:
        return ExprList([*_items(self), *_items(as_expr(other))])

    def __radd__(self, other: Any) -> ExprList:
        return ExprList([*_items(as_expr(other)), *_items(self)])


def as_expr(value: Any) -> Expr:
    if isinstance(value, Expr):
        return value
    if isinstance(value, str):
        return Constant(value)
    raise TypeError(
        f"a program state takes str or sglang expressions, not {type(value).__name__}; "
        "convert it with str() first"
    )


def _items(expr: Expr) -> list[Expr]:
    return list(expr.exprs) if isinstance(expr, ExprList) else [expr]


class ExprList(Expr):
    def __init__(self, exprs: list[Expr]):
        self.exprs = exprs

    def __repr__(self) -> str:
        return f"ExprList({self.exprs})"


class Constant(Expr):
    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return f"Constant({self.value!r})"


class Gen(Expr):
    """Generate text into variable `name` (None: append without naming it)."""

    def __init__(self, name: str | None, params: GenParams):
        self.name, self.params = name, params

    def __repr__(self) -> str:
        return f"Gen({self.name!r})"


class Select(Expr):
    """Append the choice with the highest normalised log-likelihood (mean token logprob); with
    temperature > 0, sample a choice with probability proportional to exp(that / T)."""

    def __init__(self, name: str | None, choices: list[str], temperature: float = 0.0):
        if not choices:
            raise ValueError("select needs at least one choice")
        if not all(isinstance(c, str) and c for c in choices):
            raise ValueError("select choices must be non-empty strings")
        self.name, self.choices, self.temperature = name, list(choices), temperature

    def __repr__(self) -> str:
        return f"Select({self.name!r}, choices={self.choices})"


class RoleBegin(Expr):
    def __init__(self, role: str):
        self.role = role

    def __repr__(self) -> str:
        return f"RoleBegin({self.role})"


class RoleEnd(Expr):
    def __init__(self, role: str):
        self.role = role

    def __repr__(self) -> str:
        return f"RoleEnd({self.role})"


class VarScopeBegin(Expr):
    def __init__(self, name: str):
        self.name = name


class VarScopeEnd(Expr):
    def __init__(self, name: str):
        self.name = name


class CommitPrefix(Expr):
    """Send the text so far once (no generation), so that later branches hit the cache."""


def schema_text(schema: str | dict | None) -> str | None:
    """A JSON schema as the server takes it: a JSON string (dicts are serialised)."""
    if schema is None or isinstance(schema, str):
        return schema
    return json.dumps(schema)


def named_exprs(expr: Expr) -> list[str]:
    """Names of the variables an expression will set (so that reads can wait for them)."""
    if isinstance(expr, ExprList):
        return [n for e in expr.exprs for n in named_exprs(e)]
    if isinstance(expr, (Gen, Select, VarScopeBegin)) and expr.name is not None:
        return [expr.name]
    return []
