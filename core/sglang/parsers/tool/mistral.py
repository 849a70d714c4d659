"""Mistral tool calls: `[TOOL_CALLS]` then a JSON array, or (tokenizer v11+) name[ARGS]{...}.

Mistral-7B-Instruct-v0.3 (and the v3/v7 tokenizers of mistral-common, Mistral-Small-3.1)
write the special token `[TOOL_CALLS]` and a JSON array of `{"name", "arguments"}` objects:

    [TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}, {...}]

Models on tokenizer v11 and later (Mistral-Small-3.2, Magistral, Devstral) write one
`[TOOL_CALLS]name[ARGS]{...}` per call (mistral-common's v11 instruct tokenizer); `[ARGS]`
vanishes when decoded with skip_special_tokens, giving `[TOOL_CALLS]name{...}`, which is
accepted too, as is a `[CALL_ID]id` before `[ARGS]` (its id is kept). A JSON array at the very
start of the output is read as calls without the marker (what a `tool_choice` JSON schema
produces, and what is left when `[TOOL_CALLS]` was skipped as a special token).

An array whose first element is no call is content; a later element that is no call is
dropped. Call ids are 9 alphanumeric characters, as Mistral's chat templates require.
"""

from __future__ import annotations

import random
import string

import regex
from sglang.parsers.tool.base import StreamingToolParser, ToolParser, first_non_space

MARKER = "[TOOL_CALLS]"
V11_HEADER = regex.compile(
    r"([A-Za-z0-9_\-.]+)\s*(?:\[CALL_ID\]\s*([A-Za-z0-9]+)\s*)?(?:\[ARGS\])?\s*\{"
)
BARE_ARRAY = regex.compile(r"\[\s*\{")
ALPHANUMERIC = string.ascii_letters + string.digits


def mistral_call_id() -> str:
    return "".join(random.choices(ALPHANUMERIC, k=9))


class MistralStream(StreamingToolParser):
    end_tokens = ("</s>",)

    def __init__(self, names=None, make_id=mistral_call_id) -> None:
        super().__init__(names, make_id)
        self.in_array = False
        self.first_element = True

    def _step(self, final: bool) -> bool:
        if self.state == "content":
            if self.at_start and not self.skip_ws:
                j = first_non_space(self.text, self.pos)
                if j < 0:
                    if final:
                        self._content(len(self.text))
                    return False
                m = BARE_ARRAY.match(self.text, j, partial=True)
                if m is not None and m.partial and not final:
                    return False
                if m is not None and not m.partial:
                    self.fallback_from, self.fallback_to = self.pos, j
                    self._open_array(j + 1)
                    return True
                self.at_start = False
            i = self._scan_content((MARKER,), final)
            if i < 0:
                return False
            self.pos = self.fallback_to = i + len(MARKER)
            self.state = "kind"
            return True
        if self.state == "kind":  # after the marker: an array, or name[ARGS]{...}
            if not self._skip_whitespace():
                if final:
                    self._fall_back()
                return final
            if self.text[self.pos] == "[":
                self._open_array(self.pos + 1)
                return True
            m = self._match_header(V11_HEADER, final)
            if m is True:
                return False
            if m is None or not self._known(m.group(1)):
                self._fall_back()
                return True
            self._commit(m.group(1), m.end() - 1, m.group(2))
            self.args_then = "none"
            self.state = "args"
            return True
        if self.state == "element":
            if not self._skip_whitespace():
                if final and self.first_element:
                    self._fall_back()
                return final and self.state != "element"
            self.state = "call"
            return True
        if self.state == "separator":  # after an element: `,` and the next one, or `]`
            if not self._skip_whitespace():
                return False
            c = self.text[self.pos]
            if c == ",":
                self.pos += 1
                self.state = "element"
            else:
                self.pos += c == "]"
                self.state, self.skip_ws, self.in_array = "content", True, False
            return True
        return self._step_object(final)

    def _open_array(self, pos: int) -> None:
        self.pos, self.state = pos, "element"
        self.in_array, self.first_element = True, True

    def _commit(self, name: str, args_start: int, call_id: str | None = None) -> None:
        super()._commit(name, args_start, call_id)
        self.first_element = False

    def _call_done(self) -> None:
        if self.in_array:
            self.first_element = False
            self.state = "separator"
        else:
            self.state, self.skip_ws = "content", True

    def _not_a_call(self, end: int) -> None:
        if not self.in_array or self.first_element:
            self.in_array = False
            self._fall_back()
        elif end >= 0 or self.state == "whole":  # a later element that is no call: dropped
            self.pos = end if end >= 0 else len(self.text)
            self.state = "separator"
        else:  # not an object: the array ends, the rest is content
            self.in_array = False
            self.state = "content"


class MistralToolParser(ToolParser):
    name = "mistral"
    markers = (MARKER,)
    streaming_class = MistralStream

    def detect(self, text: str) -> bool:
        return MARKER in text or text.lstrip().startswith("[{")
