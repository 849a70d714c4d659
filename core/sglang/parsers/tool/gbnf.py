"""JSON Schema -> GBNF rules, for grammars that wrap JSON in other text.

A Hermes tool call is `<tool_call>\\n{json}\\n</tool_call>`: no JSON schema describes the tags,
so such a constraint is a GBNF grammar (llama.cpp's grammar syntax, which xgrammar reads as
EBNF and llguidance converts to Lark) with the JSON written out as rules here.

The JSON is compact, as the grammar backends generate it (", " and ": " separators, no other
whitespace), with object properties in the schema's order, and strict like them: an object
has only the properties its schema names; additionalProperties (true or a schema) counts only
for an object that names none. Enforced: type (and type lists), properties, required,
items, prefixItems, minItems, maxItems, enum, const, anyOf / oneOf (as alternatives), allOf
(merged), $ref into the document ("#", "#/$defs/...", "#/definitions/..."), minLength and
maxLength, integer minimum / maximum (exclusive too), number bounds (as integers in range,
plus decimals k.ddd when 0 <= k and k + 1 are in range), and the formats date (real days of
the month; February up to the 28th), time, date-time and uuid. Not enforced (accepted
without the restriction): pattern, other formats, multipleOf, uniqueItems, not,
if/then/else, patternProperties, min/maxProperties; oneOf is not exclusive. Unbounded
integers are capped at 16 digits.
"""

from __future__ import annotations

import json
import math
from typing import Any

CHAR = r'[^"\\\x00-\x1f] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'
PRIMITIVES = {
    "json-char": CHAR,
    "json-string": '"\\"" json-char* "\\""',
    "json-int": '"-"? ("0" | [1-9] [0-9]{0,15})',
    "json-number": 'json-int ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?',
    "json-boolean": '"true" | "false"',
    "json-null": '"null"',
    "json-value": "json-object | json-array | json-string | json-number | json-boolean | json-null",
    "json-object": '"{" (json-string ": " json-value (", " json-string ": " json-value)*)? "}"',
    "json-array": '"[" (json-value (", " json-value)*)? "]"',
}
DEPENDS = {
    "json-string": ["json-char"],
    "json-number": ["json-int"],
    "json-value": [
        "json-object",
        "json-array",
        "json-string",
        "json-number",
        "json-boolean",
        "json-null",
    ],
    "json-object": ["json-string", "json-value"],
    "json-array": ["json-value"],
}
_TWO = "[0-9] [0-9]"
FORMATS = {
    "date": f'{_TWO} {_TWO} "-" ('
    '("0" [13578] | "1" [02]) "-" ("0" [1-9] | [12] [0-9] | "3" [01])'
    ' | ("0" [469] | "11") "-" ("0" [1-9] | [12] [0-9] | "30")'
    ' | "02-" ("0" [1-9] | "1" [0-9] | "2" [0-8]))',
    "time": '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? '
    '("Z" | [-+] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])',
    "uuid": '[0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12}',
}
FORMATS["date-time"] = f'{FORMATS["date"]} "T" {FORMATS["time"]}'
TYPE_KEYS = {
    "object": ("properties", "required", "additionalProperties"),
    "array": ("items", "prefixItems", "minItems", "maxItems"),
    "string": ("minLength", "maxLength", "format"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
}


def literal(text: str) -> str:
    """A GBNF string literal matching `text` exactly."""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def json_literal(value: Any) -> str:
    return literal(json.dumps(value, ensure_ascii=False))


class GbnfBuilder:
    """Collects the rules of one grammar; `json(schema, hint)` returns a rule name for JSON
    values valid under `schema` (refs resolved against `doc`, default the schema itself)."""

    def __init__(self) -> None:
        self.rules: dict[str, str] = {}
        self._refs: dict[tuple[int, str], str] = {}

    def add(self, hint: str, body: str) -> str:
        name, k = hint, 1
        while name in self.rules or name in PRIMITIVES:
            k += 1
            name = f"{hint}-{k}"
        self.rules[name] = body
        return name

    def primitive(self, name: str) -> str:
        if name not in self.rules:
            self.rules[name] = PRIMITIVES[name]
            for dep in DEPENDS.get(name, []):
                self.primitive(dep)
        return name

    def render(self, root: str) -> str:
        """The grammar text, `root ::= <root>` first."""
        lines = [f"root ::= {root}"]
        lines += [f"{name} ::= {body}" for name, body in self.rules.items()]
        return "\n".join(lines) + "\n"

    # --- schemas --------------------------------------------------------------------------
    def json(self, schema: Any, hint: str, doc: Any = None) -> str:
        doc = schema if doc is None else doc
        if schema is True or schema == {}:
            return self.primitive("json-value")
        if schema is False:
            raise ValueError(f"{hint}: the schema `false` allows no value")
        if not isinstance(schema, dict):
            raise ValueError(f"{hint}: a schema must be an object or a boolean")
        if "$ref" in schema:
            return self._ref(schema["$ref"], hint, doc)
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = _merge(merged, self._resolve(part, doc))
            return self.json(merged, hint, doc)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                rest = {k: v for k, v in schema.items() if k != key}
                alts = [
                    self.json(_merge(rest, self._resolve(alt, doc)), f"{hint}-{i}", doc)
                    for i, alt in enumerate(schema[key])
                ]
                return self.add(hint, " | ".join(alts))
        if "const" in schema:
            return self.add(hint, json_literal(schema["const"]))
        if "enum" in schema:
            return self.add(hint, " | ".join(json_literal(v) for v in schema["enum"]))
        types = schema.get("type")
        if types is None:
            types = [t for t, keys in TYPE_KEYS.items() if any(k in schema for k in keys)]
            if not types:
                return self.primitive("json-value")
        if isinstance(types, str):
            return self._typed(types, schema, hint, doc)
        alts = [self._typed(t, schema, f"{hint}-{t}", doc) for t in types]
        return alts[0] if len(alts) == 1 else self.add(hint, " | ".join(alts))

    def _typed(self, kind: str, schema: dict, hint: str, doc: Any) -> str:
        if kind == "object":
            return self._object(schema, hint, doc)
        if kind == "array":
            return self._array(schema, hint, doc)
        if kind == "string":
            return self._string(schema, hint)
        if kind == "integer":
            lo, hi = _int_bounds(schema)
            if lo is None and hi is None:
                return self.primitive("json-int")
            return self.add(hint, integer_range(lo, hi))
        if kind == "number":
            return self._number(schema, hint)
        if kind in ("boolean", "null"):
            return self.primitive(f"json-{kind}")
        raise ValueError(f"{hint}: unknown JSON type {kind!r}")

    def _object(self, schema: dict, hint: str, doc: Any) -> str:
        props = dict(schema.get("properties") or {})
        required = list(schema.get("required") or [])
        for name in required:
            props.setdefault(name, True)
        extra = schema.get("additionalProperties", False)
        if not props:
            if extra is False:
                return self.add(hint, '"{}"')
            value = self.json(extra if isinstance(extra, dict) else True, f"{hint}-value", doc)
            key = self.primitive("json-string")
            pair = f'{key} ": " {value}'
            return self.add(hint, f'"{{" ({pair} (", " {pair})*)? "}}"')
        names = list(props)
        kvs = [
            f'{json_literal(n)[:-1]}: " {self.json(props[n], f"{hint}-{_slug(n)}", doc)}'
            for n in names
        ]
        req = [n in required for n in names]
        count = len(names)
        tails: list[str] = [""] * (count + 1)  # properties i.. after one was written
        for i in reversed(range(count)):
            piece = f'", " {kvs[i]}'
            body = f"{piece} {tails[i + 1]}" if req[i] else f"({piece})? {tails[i + 1]}"
            tails[i] = self.add(f"{hint}-after-{i}", body.strip()) if i else body.strip()
        first, optional = "", True  # properties i.. when none was written yet
        for i in reversed(range(count)):
            with_i = f"{kvs[i]} {tails[i + 1]}".strip()
            if req[i]:
                first, optional = with_i, False
            else:
                first = f"({with_i})" + (f" | {first}" if first else "")
            if i and first and (req[i] or i < count - 1):
                first = self.add(f"{hint}-from-{i}", first)
        return self.add(hint, f'"{{" ({first}){"?" if optional else ""} "}}"')

    def _array(self, schema: dict, hint: str, doc: Any) -> str:
        prefix = [
            self.json(s, f"{hint}-{i}", doc) for i, s in enumerate(schema.get("prefixItems", []))
        ]
        items = schema.get("items", True)
        lo = int(schema.get("minItems", 0))
        hi = schema.get("maxItems")
        if prefix:
            body = ' ", " '.join(prefix)
            if items is not False:
                item = self.json(items, f"{hint}-item", doc)
                body += f' (", " {item})*'
            return self.add(hint, f'"[" {body} "]"')
        if items is False or hi == 0:
            return self.add(hint, '"[]"')
        item = self.json(items, f"{hint}-item", doc)
        rest = _repeat(f'(", " {item})', max(lo - 1, 0), None if hi is None else int(hi) - 1)
        seq = f"{item} {rest}".strip()
        return self.add(hint, f'"[" {seq} "]"' if lo >= 1 else f'"[" ({seq})? "]"')

    def _string(self, schema: dict, hint: str) -> str:
        fmt = FORMATS.get(schema.get("format", ""))
        if fmt is not None:
            return self.add(hint, f'"\\"" {fmt} "\\""')
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        if lo == 0 and hi is None:
            return self.primitive("json-string")
        char = self.primitive("json-char")
        return self.add(hint, f'"\\"" {_repeat(char, int(lo), hi)} "\\""')

    def _number(self, schema: dict, hint: str) -> str:
        keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
        if not any(k in schema for k in keys):
            return self.primitive("json-number")
        lo, hi = _int_bounds(schema)
        alts = []
        if lo is None or hi is None or lo <= hi:
            alts.append(integer_range(lo, hi))
        # k.ddd lies in [k, k+1): allowed when k >= 0, k >= the lower and k+1 <= the upper bound
        flo = max(0, lo or 0)
        upper = _upper(schema)
        fhi = None if upper == math.inf else math.floor(upper) - 1
        if fhi is None or flo <= fhi:
            alts.append(f'({integer_range(flo, fhi)}) "." [0-9]{{1,16}}')
        if not alts:
            raise ValueError(f"{hint}: no number the grammar can write fits the bounds")
        return self.add(hint, " | ".join(f"({a})" for a in alts))

    # --- refs -----------------------------------------------------------------------------
    def _resolve(self, schema: Any, doc: Any) -> Any:
        while isinstance(schema, dict) and "$ref" in schema:
            schema = _pointer(doc, schema["$ref"])
        return schema

    def _ref(self, ref: str, hint: str, doc: Any) -> str:
        key = (id(doc), ref)
        if key not in self._refs:
            name = self.add(f"ref-{_slug(ref.rsplit('/', 1)[-1] or 'root')}", "")
            self._refs[key] = name
            self.rules[name] = self.json(_pointer(doc, ref), f"{name}-body", doc)
        return self._refs[key]


def _pointer(doc: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        raise ValueError(f"$ref {ref!r}: only references inside the schema are supported")
    node = doc
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _merge(a: dict, b: Any) -> dict:
    if not isinstance(b, dict):
        return a
    out = {**a, **b}
    if "properties" in a and "properties" in b:
        out["properties"] = {**a["properties"], **b["properties"]}
    if "required" in a and "required" in b:
        out["required"] = list(dict.fromkeys([*a["required"], *b["required"]]))
    return out


def _slug(text: str) -> str:
    s = "".join(c if c.isascii() and c.isalnum() else "-" for c in str(text)).strip("-")
    return s[:24] or "x"


def _repeat(expr: str, lo: int, hi: int | None) -> str:
    if hi is None:
        return f"{expr}{{{lo},}}" if lo else f"{expr}*"
    if hi <= 0:
        return ""
    return f"{expr}{{{lo},{hi}}}"


def _upper(schema: dict) -> float:
    values = [schema[k] for k in ("maximum", "exclusiveMaximum") if _is_num(schema.get(k))]
    return min(values) if values else math.inf


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int_bounds(schema: dict) -> tuple[int | None, int | None]:
    """The integers allowed by minimum/maximum and their exclusive forms, as [lo, hi]."""
    lo = hi = None
    if _is_num(schema.get("minimum")):
        lo = math.ceil(schema["minimum"])
    if _is_num(schema.get("exclusiveMinimum")):
        v = math.floor(schema["exclusiveMinimum"]) + 1
        lo = v if lo is None else max(lo, v)
    if _is_num(schema.get("maximum")):
        hi = math.floor(schema["maximum"])
    if _is_num(schema.get("exclusiveMaximum")):
        v = math.ceil(schema["exclusiveMaximum"]) - 1
        hi = v if hi is None else min(hi, v)
    return lo, hi


MAX_DIGITS = 16


def integer_range(lo: int | None, hi: int | None) -> str:
    """A GBNF expression for the JSON integers n with lo <= n <= hi (None: unbounded)."""
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"no integer lies in [{lo}, {hi}]")
    alts = []
    if lo is None or lo < 0:  # negatives: "-" then |n| in [max(1, -hi), -lo]
        nhi = None if lo is None else -lo
        nlo = 1 if hi is None or hi >= 0 else -hi
        alts += [f'"-" {p}' for p in _natural_range(nlo, nhi)]
    if hi is None or hi >= 0:
        alts += _natural_range(max(lo or 0, 0), hi)
    return " | ".join(f"({a})" for a in alts)


def _natural_range(lo: int, hi: int | None) -> list[str]:
    """Patterns for the naturals in [lo, hi] (hi None: up to MAX_DIGITS digits)."""
    top = 10**MAX_DIGITS - 1
    hi = top if hi is None else min(hi, top)
    out = []
    for digits in range(len(str(lo)), len(str(hi)) + 1):
        a = max(lo, 10 ** (digits - 1) if digits > 1 else 0)
        b = min(hi, 10**digits - 1)
        if a <= b:
            out += _same_length(str(a), str(b))
    return out


def _same_length(a: str, b: str) -> list[str]:
    """Patterns for the numbers a..b written with the same number of digits."""
    if a == b:
        return [literal(a)]
    if len(a) == 1:
        return [f"[{a}-{b}]"]
    if a[0] == b[0]:
        return [f"{literal(a[0])} {p}" for p in _same_length(a[1:], b[1:])]
    n = len(a) - 1
    out = []
    lo_first = int(a[0])
    if a[1:] == "0" * n:
        lo_first -= 1
    else:
        out += [f"{literal(a[0])} {p}" for p in _same_length(a[1:], "9" * n)]
    hi_first = int(b[0])
    if b[1:] != "9" * n:
        hi_first -= 1
    if hi_first > lo_first:
        first = (
            f"[{lo_first + 1}-{hi_first}]" if hi_first > lo_first + 1 else literal(str(hi_first))
        )
        out.append(f"{first} [0-9]{{{n}}}")
    if b[1:] != "9" * n:
        out += [f"{literal(b[0])} {p}" for p in _same_length("0" * n, b[1:])]
    return out
