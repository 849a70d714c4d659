"""Tool-call parsing: the parser interface and the streaming scanner every format shares (the
records they produce: records.py).

A model announces tool calls inside its text (a marker, then JSON). A parser splits an output
into content (what the user reads) and tool calls (name + arguments JSON string), either for a
whole output (`ToolParser.parse`) or as text arrives (`StreamingToolParser.feed`), which yields
OpenAI-style deltas: content text, and per call a first delta with index, id and name, then
argument fragments.

One machine serves both: `parse(text)` feeds the whole text to a fresh streaming parser and
finishes it, so a streamed output always ends up equal to the whole-text parse, however the
text was split.

Commit rule. Text that may begin a tool call is held back (never shown as content) until the
call's header is recognised: the marker, `{`, `"name": "<a known tool>"`, then
`"arguments"` (or `"parameters"`) and the `{` that opens the arguments. Until then a mismatch
falls back: the held text is content, as written. A header in another key order (Hermes-2-Pro
writes "arguments" first) or with arguments that are not an object is parsed once its JSON
object is complete. Once committed, a call is streamed: its name, then its raw argument text up
to the brace that balances the opening one. Arguments are the model's own text; like OpenAI's
`arguments` they are not guaranteed to be valid JSON (a truncated output leaves them cut).
Whitespace between content and a call, and between calls, is not content.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import regex
from sglang.parsers.tool.json_span import JsonSpan, call_from_object
from sglang.parsers.tool.records import (
    ContentDelta,
    Delta,
    ParseResult,
    ToolCall,
    ToolCallDelta,
    openai_call_id,
    tool_names,
)

NAME_CHARS = r'(?:[^"\\\x00-\x1f]|\\.)*'
HEADER = regex.compile(
    r'\{\s*(?:"type"\s*:\s*"function"\s*,\s*)?"name"\s*:\s*"(' + NAME_CHARS + r')"\s*,\s*'
    r'"(?:arguments|parameters)"\s*:\s*\{'
)
"""A call object's header, name first, up to the `{` that opens its arguments."""

WHITESPACE = " \t\r\n"


class StreamingToolParser(ABC):
    """Splits a growing output into content and tool-call deltas.

    `feed(delta_text)` returns what is certain so far; `finish()` flushes what was held back.
    Subclasses implement `_step(final)` over `self.text[self.pos:]`: consume some text
    (emitting deltas), return True to be called again, False when they need more text."""

    end_tokens: ClassVar[tuple[str, ...]] = ()
    """End-of-turn special tokens dropped when they end the output (skip_special_tokens off)."""

    def __init__(
        self, names: frozenset[str] | None = None, make_id: Callable[[], str] = openai_call_id
    ) -> None:
        self.names, self.make_id = names, make_id
        self.text = ""  # everything fed so far (end tokens excepted)
        self.pos = 0  # text[:pos] is consumed: emitted, or dropped
        self.state = "content"
        self.n_calls = 0
        self.skip_ws = False  # drop whitespace at pos (it follows a call)
        self.at_start = True  # nothing but whitespace seen
        self.fallback_from = self.fallback_to = 0  # held text that is content if a call fails
        self.span: JsonSpan | None = None
        self.block_start = self.scanned = 0  # a buffered call object: its start, scan point
        self.args_then = "tail"  # after the arguments: the rest of the call object, or none
        self._raw = ""  # fed text not yet moved to `text` (may be an end token)
        self._out: list[Delta] = []
        self._finished = False

    # --- public ---------------------------------------------------------------------------
    def feed(self, delta_text: str) -> list[Delta]:
        self._raw += delta_text
        keep = _held_end_token(self._raw, self.end_tokens)
        self.text += self._raw[: len(self._raw) - keep]
        self._raw = self._raw[len(self._raw) - keep :]
        return self._run(final=False)

    def finish(self) -> list[Delta]:
        if self._finished:
            return []
        self._finished = True
        if self._raw not in self.end_tokens:
            self.text += self._raw
        self._raw = ""
        return self._run(final=True)

    @property
    def has_tool_calls(self) -> bool:
        return self.n_calls > 0

    # --- for subclasses -------------------------------------------------------------------
    @abstractmethod
    def _step(self, final: bool) -> bool:
        """Advance from self.pos; True when progress was made."""

    def _run(self, final: bool) -> list[Delta]:
        while self._step(final):
            pass
        out, self._out = self._out, []
        return out

    def _content(self, upto: int) -> None:
        if upto > self.pos:
            self._emit(ContentDelta(self.text[self.pos : upto]))
            self.at_start = False
        self.pos = max(self.pos, upto)

    def _emit(self, delta: Delta) -> None:
        last = self._out[-1] if self._out else None
        if isinstance(delta, ContentDelta) and isinstance(last, ContentDelta):
            self._out[-1] = ContentDelta(last.text + delta.text)
        elif (
            isinstance(delta, ToolCallDelta)
            and isinstance(last, ToolCallDelta)
            and delta.id is None
            and last.index == delta.index
        ):
            args = last.arguments + delta.arguments
            self._out[-1] = ToolCallDelta(last.index, args, last.id, last.name)
        else:
            self._out.append(delta)

    def _skip_whitespace(self) -> bool:
        """Drop whitespace at pos; True when a non-whitespace character is there."""
        n = len(self.text)
        while self.pos < n and self.text[self.pos] in WHITESPACE:
            self.pos += 1
        return self.pos < n

    def _scan_content(self, markers: tuple[str, ...], final: bool) -> int:
        """Emit content up to the first marker; return the marker's index or -1.

        Whitespace right before a marker is held (dropped if the call commits), and so is a
        text end that could still become a marker or be followed by one."""
        if self.skip_ws:
            if not self._skip_whitespace():
                return -1
            self.skip_ws = False
        found = [(i, m) for m in markers if (i := self.text.find(m, self.pos)) >= 0]
        if found:
            i = min(found)[0]
            self._content(self._rstrip(i))
            self.fallback_from = self.pos
            self.pos = i
            return i
        if final:
            self._content(len(self.text))
            return -1
        end = len(self.text) - _held_prefix(self.text, self.pos, markers)
        self._content(self._rstrip(end))
        return -1

    def _rstrip(self, end: int) -> int:
        while end > self.pos and self.text[end - 1] in WHITESPACE:
            end -= 1
        return end

    def _match_header(self, pattern: regex.Pattern, final: bool) -> regex.Match | None | bool:
        """The header match at pos; True while it may still match; None on mismatch."""
        m = pattern.match(self.text, self.pos, partial=True)
        if m is None or (m.partial and final):
            return None
        if m.partial:
            return True
        return m

    def _known(self, name: str) -> bool:
        return self.names is None or name in self.names

    def _commit(self, name: str, args_start: int, call_id: str | None = None) -> None:
        """A call is recognised: emit its first delta; its arguments start at args_start."""
        self._emit(ToolCallDelta(self.n_calls, "", call_id or self.make_id(), name))
        self.n_calls += 1
        self.pos = args_start
        self.span = JsonSpan()
        self.at_start = False

    def _stream_args(self) -> bool:
        """Emit argument text from pos; True once the arguments' closing brace is emitted."""
        end = self.span.scan(self.text, self.pos, len(self.text))
        stop = len(self.text) if end < 0 else end
        if stop > self.pos:
            self._emit(ToolCallDelta(self.n_calls - 1, self.text[self.pos : stop]))
        self.pos = stop
        return end >= 0

    def _fall_back(self) -> None:
        """The held text was no call: it is content, up to fallback_to."""
        self.pos = self.fallback_from
        self._content(self.fallback_to)
        self.at_start = False
        self.state = "content"

    def _not_a_call(self, end: int) -> None:
        """The object at pos is no call (end: just past it when complete, else -1)."""
        self._fall_back()

    def _call_done(self) -> None:
        """A call (or a dropped element) ended at pos; subclasses choose the next state."""
        self.state = "content"
        self.skip_ws = True

    def _step_object(self, final: bool) -> bool:
        """The states of one call object `{"name": ..., "arguments": {...}}` at pos:
        call (header), whole (buffered, other key orders), args (streamed), tail (dropped)."""
        n = len(self.text)
        if self.state == "call":
            if not self._skip_whitespace():
                if final:
                    self._not_a_call(-1)
                return final
            m = self._match_header(HEADER, final)
            if m is True:
                return False
            if m is not None and self._known(_decode_name(m.group(1))):
                self._commit(_decode_name(m.group(1)), m.end() - 1)
                self.state, self.args_then = "args", "tail"
            elif self.text[self.pos] == "{":
                self.span, self.state = JsonSpan(), "whole"
                self.block_start = self.scanned = self.pos
            else:
                self._not_a_call(-1)
            return True
        if self.state == "whole":
            end = self.span.scan(self.text, self.scanned, n)
            self.scanned = n
            if end < 0:
                if final:
                    self._not_a_call(-1)
                return final
            call = call_from_object(self.text[self.block_start : end])
            if call is None or not self._known(call[0]):
                self._not_a_call(end)
                return True
            self._emit(ToolCallDelta(self.n_calls, call[1], self.make_id(), call[0]))
            self.n_calls += 1
            self.pos, self.at_start = end, False
            self._call_done()
            return True
        if self.state == "args":
            if not self._stream_args():
                return False
            if self.args_then == "tail":
                self.span, self.state = JsonSpan(depth=1), "tail"
            else:
                self._call_done()
            return True
        if self.state == "tail":
            end = self.span.scan(self.text, self.pos, n)
            self.pos = n if end < 0 else end
            if end < 0:
                return False
            self._call_done()
            return True
        raise AssertionError(f"unknown state {self.state!r}")


def _decode_name(raw: str) -> str:
    try:
        return json.loads(f'"{raw}"')
    except ValueError:
        return raw


def _held_prefix(text: str, start: int, markers: tuple[str, ...]) -> int:
    """Length of the longest suffix of text[start:] that is a proper prefix of a marker."""
    best = 0
    for m in markers:
        for k in range(min(len(m) - 1, len(text) - start), best, -1):
            if text.endswith(m[:k]):
                best = k
                break
    return best


def _held_end_token(raw: str, tokens: tuple[str, ...]) -> int:
    """Length of the tail of raw that is, or may become, an end token."""
    best = 0
    for t in tokens:
        if raw.endswith(t):
            best = max(best, len(t))
        for k in range(min(len(t) - 1, len(raw)), best, -1):
            if raw.endswith(t[:k]):
                best = k
                break
    return best


class ToolParser:
    """A model family's tool-call format.

    needs_special_tokens: the format's markers are special tokens, so the route must decode
    with skip_special_tokens=False for them to reach the parser."""

    name: ClassVar[str] = ""
    markers: ClassVar[tuple[str, ...]] = ()
    needs_special_tokens: ClassVar[bool] = True
    streaming_class: ClassVar[type[StreamingToolParser]]

    def __init__(
        self, tools: list[dict] | None = None, make_id: Callable[[], str] | None = None
    ) -> None:
        """tools: the request's tools; calls to other names are not calls (None: any name)."""
        self.names = tool_names(tools)
        self.make_id = make_id

    def detect(self, text: str) -> bool:
        """Whether text holds (the start of) a tool call in this format."""
        return any(m in text for m in self.markers)

    def stream(self) -> StreamingToolParser:
        kw = {} if self.make_id is None else {"make_id": self.make_id}
        return self.streaming_class(self.names, **kw)

    def parse(self, text: str) -> ParseResult:
        s = self.stream()
        deltas = s.feed(text) + s.finish()
        content = "".join(d.text for d in deltas if isinstance(d, ContentDelta))
        calls: dict[int, list] = {}
        for d in deltas:
            if isinstance(d, ToolCallDelta):
                if d.id is not None:
                    calls[d.index] = [d.name, d.id, d.arguments]
                else:
                    calls[d.index][2] += d.arguments
        return ParseResult(content, [ToolCall(n, a, i) for n, i, a in calls.values()])


def first_non_space(text: str, start: int) -> int:
    """Index of the first character at or after `start` that is not whitespace, or -1."""
    for j in range(start, len(text)):
        if text[j] not in " \t\r\n":
            return j
    return -1
