"""The language's public functions: `function`, `gen`, `select`, the roles, and the default
backend."""

from __future__ import annotations

import re
from typing import Any

from sglang.lang.backend.base import Backend
from sglang.lang.function import SglFunction
from sglang.lang.ir import (
    REGEX_BOOL,
    REGEX_FLOAT,
    REGEX_INT,
    REGEX_STR,
    Expr,
    ExprList,
    Gen,
    GenParams,
    RoleBegin,
    RoleEnd,
    Select,
    as_expr,
    schema_text,
)

_DEFAULT: list[Backend | None] = [None]


def function(func: Any = None):
    """Decorator: `@sgl.function def program(s, ...)`."""
    if func is not None:
        return SglFunction(func)
    return SglFunction


def set_default_backend(backend: Backend | None) -> None:
    """The backend programs run on when run() gets none (one for the whole process)."""
    _DEFAULT[0] = backend


def get_default_backend() -> Backend | None:
    return _DEFAULT[0]


def resolve_backend(backend: Backend | None) -> Backend:
    backend = backend or _DEFAULT[0]
    if backend is None:
        raise ValueError(
            "no backend: pass backend= to run(), or call sgl.set_default_backend("
            "sgl.RuntimeEndpoint('http://127.0.0.1:30000'))"
        )
    return backend


def flush_cache(backend: Backend | None = None) -> bool:
    return resolve_backend(backend).flush_cache()


def get_server_info(backend: Backend | None = None) -> dict[str, Any]:
    return resolve_backend(backend).get_server_info()


DTYPE_REGEX = {
    int: REGEX_INT,
    "int": REGEX_INT,
    float: REGEX_FLOAT,
    "float": REGEX_FLOAT,
    bool: REGEX_BOOL,
    "bool": REGEX_BOOL,
    str: REGEX_STR,
    "str": REGEX_STR,
}


def gen(
    name: str | None = None,
    max_tokens: int | None = None,
    stop: str | list[str] | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    min_p: float | None = None,
    regex: str | None = None,
    json_schema: str | dict | None = None,
    choices: list[str] | None = None,
    *,
    min_tokens: int | None = None,
    stop_token_ids: list[int] | None = None,
    frequency_penalty: float | None = None,
    presence_penalty: float | None = None,
    repetition_penalty: float | None = None,
    ignore_eos: bool | None = None,
    return_logprob: bool | None = None,
    logprob_start_len: int | None = None,
    top_logprobs_num: int | None = None,
    dtype: type | str | None = None,
) -> Expr:
    """Generate into variable `name`. regex / json_schema (a JSON string or a dict) constrain
    the output; dtype int/float/bool/str is a shorthand regex; choices makes it a select."""
    if choices is not None:
        return Select(name, choices, 0.0 if temperature is None else temperature)
    if dtype is not None:
        if dtype not in DTYPE_REGEX:
            raise ValueError(f"dtype must be int, float, bool or str, not {dtype!r}")
        regex = DTYPE_REGEX[dtype]
    if regex is not None:
        re.compile(regex)  # fail here, in the program, rather than on the server
    if regex is not None and json_schema is not None:
        raise ValueError("give regex or json_schema, not both")
    params = GenParams(
        max_new_tokens=max_tokens,
        min_new_tokens=min_tokens,
        stop=stop,
        stop_token_ids=stop_token_ids,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        min_p=min_p,
        frequency_penalty=frequency_penalty,
        presence_penalty=presence_penalty,
        repetition_penalty=repetition_penalty,
        ignore_eos=ignore_eos,
        regex=regex,
        json_schema=schema_text(json_schema),
        return_logprob=return_logprob,
        logprob_start_len=logprob_start_len,
        top_logprobs_num=top_logprobs_num,
    )
    return Gen(name, params)


def gen_int(name: str | None = None, max_tokens: int | None = None, **kwargs: Any) -> Expr:
    return gen(name, max_tokens, dtype=int, **kwargs)


def gen_string(name: str | None = None, max_tokens: int | None = None, **kwargs: Any) -> Expr:
    return gen(name, max_tokens, dtype=str, **kwargs)


def select(name: str | None = None, choices: list[str] | None = None, temperature: float = 0.0):
    """Append the choice the model finds most likely: the highest mean token logprob."""
    if choices is None:
        raise ValueError("select needs choices")
    return Select(name, choices, temperature)


def _role(role: str, expr: Any = None) -> ExprList:
    inner = [] if expr is None else [as_expr(expr)]
    return ExprList([RoleBegin(role), *inner, RoleEnd(role)])


def system(expr: Any = None) -> ExprList:
    return _role("system", expr)


def user(expr: Any = None) -> ExprList:
    return _role("user", expr)


def assistant(expr: Any = None) -> ExprList:
    return _role("assistant", expr)


def system_begin() -> RoleBegin:
    return RoleBegin("system")


def system_end() -> RoleEnd:
    return RoleEnd("system")


def user_begin() -> RoleBegin:
    return RoleBegin("user")


def user_end() -> RoleEnd:
    return RoleEnd("user")


def assistant_begin() -> RoleBegin:
    return RoleBegin("assistant")


def assistant_end() -> RoleEnd:
    return RoleEnd("assistant")
