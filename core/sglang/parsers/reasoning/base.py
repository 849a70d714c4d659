"""Reasoning parsers: split a model's thinking (`reasoning_content`) from its answer.

Reasoning models write their thinking between `<think>` and `</think>`, then the answer.
`parse(text)` splits a whole output; `stream()` gives a parser whose `feed(delta)` returns
(reasoning_delta, content_delta) as text arrives, holding back a tail that may be the start of
a tag split across deltas; `finish()` flushes it. `parse` runs the same machine on the whole
text, so a streamed output always adds up to the whole-text parse.

Reasoning is stripped of surrounding whitespace (trailing whitespace is held back until text
follows it); the content after `</think>` loses its leading whitespace; an output without
reasoning is content exactly as written.
"""

from __future__ import annotations

from typing import ClassVar

THINK_START, THINK_END = "<think>", "</think>"
WHITESPACE = " \t\r\n"


class StreamingReasoningParser:
    """States: start (an optional <think> may come), reasoning, content."""

    def __init__(self, starts_in_reasoning: bool) -> None:
        self.starts_in_reasoning = starts_in_reasoning
        self.text = ""
        self.pos = 0
        self.state = "start"
        self.lstrip = True  # drop whitespace at pos (start of reasoning, or of the answer)
        self._finished = False

    def feed(self, delta: str) -> tuple[str, str]:
        self.text += delta
        return self._run(final=False)

    def finish(self) -> tuple[str, str]:
        if self._finished:
            return "", ""
        self._finished = True
        return self._run(final=True)

    def _run(self, final: bool) -> tuple[str, str]:
        reasoning, content = [], []
        while True:
            if self.state == "start":
                if not self._start(final):
                    break
            elif self.state == "reasoning":
                reasoning.append(self._reasoning(final))
                if self.state == "reasoning":
                    break
            else:
                if self.lstrip and not self._skip_whitespace():
                    break
                self.lstrip = False
                content.append(self.text[self.pos :])
                self.pos = len(self.text)
                break
        return "".join(reasoning), "".join(content)

    def _start(self, final: bool) -> bool:
        """Decide whether the output opens with <think>; False while it cannot tell yet."""
        j = self.pos
        while j < len(self.text) and self.text[j] in WHITESPACE:
            j += 1
        rest = self.text[j : j + len(THINK_START)]
        if rest == THINK_START:
            self.pos, self.state = j + len(THINK_START), "reasoning"
            return True
        if THINK_START.startswith(rest) and not final:
            return False
        if self.starts_in_reasoning:
            self.state = "reasoning"
        else:
            self.state, self.lstrip = "content", False
        return True

    def _reasoning(self, final: bool) -> str:
        """Reasoning text up to </think> (then switch to content) or as far as is certain."""
        if self.lstrip and not self._skip_whitespace():
            return ""
        self.lstrip = False
        end = self.text.find(THINK_END, self.pos)
        if end >= 0:
            out = self.text[self.pos : _rstrip(self.text, self.pos, end)]
            self.pos, self.state, self.lstrip = end + len(THINK_END), "content", True
            return out
        stop = len(self.text)
        if not final:
            stop -= _held_prefix(self.text, self.pos, THINK_END)
        stop = _rstrip(self.text, self.pos, stop)
        out = self.text[self.pos : stop]
        self.pos = stop
        return out

    def _skip_whitespace(self) -> bool:
        while self.pos < len(self.text) and self.text[self.pos] in WHITESPACE:
            self.pos += 1
        return self.pos < len(self.text)


def _rstrip(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in WHITESPACE:
        end -= 1
    return end


def _held_prefix(text: str, start: int, tag: str) -> int:
    """Length of the longest suffix of text[start:] that is a proper prefix of tag."""
    for k in range(min(len(tag) - 1, len(text) - start), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


class ReasoningParser:
    """A model family's reasoning format."""

    name: ClassVar[str] = ""
    starts_in_reasoning: ClassVar[bool] = False
    """The output begins inside the reasoning (the template opened <think>)."""

    def stream(self, starts_in_reasoning: bool | None = None) -> StreamingReasoningParser:
        """starts_in_reasoning: override the format's (False: an output whose start the route
        constrained to an answer is reasoning only inside an explicit <think> block)."""
        if starts_in_reasoning is None:
            starts_in_reasoning = self.starts_in_reasoning
        return StreamingReasoningParser(starts_in_reasoning)

    def parse(self, text: str, starts_in_reasoning: bool | None = None) -> tuple[str, str]:
        """(reasoning_content, content) of a whole output; reasoning "" when there is none."""
        s = self.stream(starts_in_reasoning)
        r1, c1 = s.feed(text)
        r2, c2 = s.finish()
        return r1 + r2, c1 + c2
