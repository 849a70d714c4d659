"""The generation constraint for `tool_choice` "required" or a named function.

The constraint makes the model write a call in the text its format's parser reads, with
arguments valid for the function's JSON schema:

- llama3: a JSON schema for one call object `{"name": <const>, "parameters": <schema>}`
  (anyOf over the tools for "required"); the parser reads an output that starts with `{`.
- mistral: a JSON schema for an array of `{"name": <const>, "arguments": <schema>}` objects
  (at most one for a named function, or when parallel calls are off); the parser reads an
  output that starts with `[` without the `[TOOL_CALLS]` marker, which, being a special token,
  a text grammar cannot produce reliably.
- hermes: `<tool_call>\\n{...}\\n</tool_call>` is JSON inside tags, which no JSON schema
  describes, so the constraint is a GBNF grammar (`ebnf`) with the JSON written out as rules
  (gbnf.py; its docstring lists the schema keywords it enforces). Several blocks, separated
  by a newline, when parallel calls are allowed and the choice is "required".

Each tool's `$defs` / `definitions` move to the root of the combined schema (refs rewritten),
so tools' local references keep resolving once their schemas are nested.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from sglang.parsers.tool.gbnf import GbnfBuilder, json_literal, literal

EMPTY_PARAMETERS = {"type": "object", "properties": {}}


def constraint_for_tool_choice(
    parser_name: str, tools: list[dict] | None, tool_choice: Any, parallel: bool = True
) -> dict[str, str] | None:
    """{"json_schema": <JSON text>} or {"ebnf": <GBNF text>} for the sampling params, or None
    when tool_choice does not force a call ("auto", "none", None).

    tools: OpenAI tools ([{"type": "function", "function": {"name", "parameters"}}]);
    tool_choice: "required" or {"type": "function", "function": {"name": ...}};
    parallel: OpenAI's parallel_tool_calls (several calls allowed for "required").
    Raises ValueError for a choice naming no given tool, or "required" without tools."""
    from sglang.parsers.tool import ALIASES

    chosen = chosen_functions(tools, tool_choice)
    if chosen is None:
        return None
    several = parallel and tool_choice == "required"
    kind = ALIASES.get(parser_name, parser_name)
    if kind == "llama3":
        return {"json_schema": json.dumps(_hoist_defs(call_schema(chosen, "parameters")))}
    if kind == "mistral":
        schema = {"type": "array", "items": call_schema(chosen, "arguments"), "minItems": 1}
        if not several:
            schema["maxItems"] = 1
        return {"json_schema": json.dumps(_hoist_defs(schema))}
    if kind == "hermes":
        return {"ebnf": hermes_grammar(chosen, several)}
    raise ValueError(f"no tool_choice constraint for tool-call parser {parser_name!r}")


def chosen_functions(tools: list[dict] | None, tool_choice: Any) -> list[dict] | None:
    """The functions ({"name", "parameters"}) tool_choice forces, or None (no constraint)."""
    if tool_choice is None or tool_choice in ("auto", "none"):
        return None
    functions = [t.get("function", t) for t in tools or []]
    if tool_choice == "required":
        if not functions:
            raise ValueError('tool_choice "required" needs at least one tool in `tools`')
        return functions
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name", tool_choice.get("name"))
        match = [f for f in functions if f.get("name") == name]
        if not match:
            raise ValueError(f"tool_choice names the function {name!r}, which is not in tools")
        return match[:1]
    raise ValueError(f"tool_choice must be auto, none, required or a function, not {tool_choice!r}")


def parameters_of(function: dict) -> Any:
    params = function.get("parameters")
    return EMPTY_PARAMETERS if params is None else params


def call_schema(functions: list[dict], args_key: str) -> dict:
    """The JSON schema of one call object of any of `functions` (defs still nested: pass the
    whole schema through _hoist_defs)."""
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "const": f["name"]},
                args_key: _namespaced(parameters_of(f), f"f{i}"),
            },
            "required": ["name", args_key],
            "additionalProperties": False,
        }
        for i, f in enumerate(functions)
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


def hermes_grammar(functions: list[dict], several: bool) -> str:
    """GBNF for `<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>` block(s)."""
    g = GbnfBuilder()
    bodies = []
    for i, f in enumerate(functions):
        args = g.json(parameters_of(f), f"fn{i}-args")
        head = (
            literal('{"name": ') + " " + json_literal(f["name"]) + " " + literal(', "arguments": ')
        )
        bodies.append(g.add(f"fn{i}", f'{head} {args} "}}"'))
    open_tag, close_tag, newline = (
        literal("<tool_call>\n"),
        literal("\n</tool_call>"),
        literal("\n"),
    )
    call = g.add("tool-call", f"{open_tag} ({' | '.join(bodies)}) {close_tag}")
    return g.render(f"{call} ({newline} {call})*" if several else call)


def _namespaced(schema: Any, prefix: str) -> Any:
    """A copy of schema whose local defs are renamed `<prefix>-<name>` and refs rewritten;
    the defs travel under the key "$defs" for _hoist_defs to lift."""
    if not isinstance(schema, dict):
        return schema
    schema = copy.deepcopy(schema)
    defs = {}
    for key in ("$defs", "definitions"):
        for name, sub in (schema.pop(key, None) or {}).items():
            defs[f"{prefix}-{name}"] = sub

    def rewrite(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                for key in ("#/$defs/", "#/definitions/"):
                    if ref.startswith(key):
                        node["$ref"] = f"#/$defs/{prefix}-{ref[len(key) :]}"
                if ref == "#":
                    raise ValueError("a tool's parameters may not refer to their own root ('#')")
            for v in node.values():
                rewrite(v)
        elif isinstance(node, list):
            for v in node:
                rewrite(v)

    rewrite(schema)
    for v in defs.values():
        rewrite(v)
    if defs:
        schema["__defs__"] = defs
    return schema


def _hoist_defs(schema: dict) -> dict:
    """Move every nested "__defs__" (from _namespaced) into the root's "$defs"."""
    found: dict[str, Any] = {}

    def lift(node: Any) -> None:
        if isinstance(node, dict):
            found.update(node.pop("__defs__", {}) or {})
            for v in node.values():
                lift(v)
        elif isinstance(node, list):
            for v in node:
                lift(v)

    lift(schema)
    if found:
        schema = {**schema, "$defs": {**schema.get("$defs", {}), **found}}
    return schema
