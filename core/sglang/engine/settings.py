"""Settings, checked and resolved once.

`ServerArgs` (sglang.server_args) is the user's settings. `check_names` checks the names that
plugins register (grammar backends, tool-call and reasoning parsers), which the settings leaf
cannot see; `resolve` fills what the user left unset from the backend's `ServerDefaults`, then
the core's own, into a new record.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sglang.constrained.registry import grammar_backends
from sglang.server_args import ServerArgs


def tool_parsers() -> tuple[str, ...]:
    """--tool-call-parser's choices: the formats, their SGLang aliases, and auto."""
    from sglang.parsers.tool import ALIASES, TOOL_PARSERS

    return ("auto", *sorted({*TOOL_PARSERS, *ALIASES}))


def reasoning_parsers() -> tuple[str, ...]:
    from sglang.parsers.reasoning import REASONING_PARSERS

    return ("auto", *REASONING_PARSERS)


def quantizations() -> tuple[str, ...]:
    from sglang.layers.quantization.registry import quantization_choices

    return quantization_choices()


def check_names(args: ServerArgs) -> None:
    """ValueError naming the flag when a registered name is unknown."""
    if args.quantization is not None and args.quantization not in quantizations():
        raise ValueError(f"--quantization must be one of {quantizations()}")
    if args.grammar_backend not in grammar_backends():
        raise ValueError(f"--grammar-backend must be one of {grammar_backends()}")
    if args.tool_call_parser is not None and args.tool_call_parser not in tool_parsers():
        raise ValueError(f"--tool-call-parser must be one of {tool_parsers()}")
    if args.reasoning_parser is not None and args.reasoning_parser not in reasoning_parsers():
        raise ValueError(f"--reasoning-parser must be one of {reasoning_parsers()}")


def settings_from_kwargs(**kwargs: Any) -> ServerArgs:
    """`ServerArgs.from_kwargs` (unknown names and bad values raise) plus `check_names`."""
    args = ServerArgs.from_kwargs(**kwargs)
    check_names(args)
    return args


def resolve(args: ServerArgs, backend_defaults: Any) -> ServerArgs:
    """A new record with what `args` left unset taken from the backend's ServerDefaults, then
    the core's own defaults. `args` itself is not changed."""
    from sglang.model_executor.graph_runner import graph_batch_sizes

    changes: dict[str, Any] = {}
    if args.mem_fraction_static is None:  # the backend's KV cap holds only then
        extra = dict(args.extra)
        extra.setdefault("kv_cache_bytes", getattr(backend_defaults, "kv_cache_bytes", None))
        changes["extra"] = extra
    for name in ("mem_fraction_static", "chunked_prefill_size", "max_running_requests"):
        if getattr(args, name) is None:
            changes[name] = getattr(backend_defaults, name, None)
    if changes.get("mem_fraction_static", args.mem_fraction_static) is None:
        changes["mem_fraction_static"] = 0.85
    if changes.get("chunked_prefill_size", args.chunked_prefill_size) is None:
        changes["chunked_prefill_size"] = 8192
    sizes = args.cuda_graph_bs
    if sizes is None:
        sizes = getattr(backend_defaults, "graph_batch_sizes", None)
        if args.cuda_graph_max_bs is not None or not sizes:
            sizes = graph_batch_sizes(args.cuda_graph_max_bs or 32)
        changes["cuda_graph_bs"] = sorted(sizes)
    changes["cuda_graph_max_bs"] = max(sizes)
    return dataclasses.replace(args, **changes)
