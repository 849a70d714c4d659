"""Where a JSON value ends in a stream of text, and a complete call object read in any key
order."""

from __future__ import annotations

import json


class JsonSpan:
    """Finds where a JSON value that starts with `{` or `[` ends: brace depth outside strings.

    Structural only (strings, escapes, nesting), so it finds the end of broken JSON too."""

    def __init__(self, depth: int = 0) -> None:
        self.depth, self.in_string, self.escaped = depth, False, False

    def scan(self, text: str, start: int, end: int) -> int:
        """Consume text[start:end]; the index just past the closing brace, or -1 if not yet."""
        for i in range(start, end):
            c = text[i]
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif c == "\\":
                    self.escaped = True
                elif c == '"':
                    self.in_string = False
            elif c == '"':
                self.in_string = True
            elif c in "{[":
                self.depth += 1
            elif c in "}]":
                self.depth -= 1
                if self.depth <= 0:
                    return i + 1
        return -1


CALL_KEYS = frozenset({"name", "arguments", "parameters", "type", "id"})


def call_from_object(text: str) -> tuple[str, str] | None:
    """(name, arguments JSON) of a complete call object in any key order, else None.

    The object must have a string name and arguments (or parameters: an object, a string
    holding one, or null) and no keys beyond type and id, so that JSON answers that merely
    have a "name" are not taken for calls."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    keys = set(obj) - CALL_KEYS
    if keys or not ({"arguments", "parameters"} & set(obj)):
        return None
    args = obj.get("arguments", obj.get("parameters"))
    if args is None:
        args = {}
    if isinstance(args, str):
        try:
            parsed = json.loads(args)
        except ValueError:
            return None
        if not isinstance(parsed, dict):
            return None
        return obj["name"], args
    if not isinstance(args, dict):
        return None
    return obj["name"], json.dumps(args, ensure_ascii=False)
