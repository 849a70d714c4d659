"""Incremental detokenization and stop-string handling for one request.

Byte-level and SentencePiece tokenizers can split a character across tokens, and decoding a
suffix alone can lose a leading space. So each step decodes a short window that starts a few
tokens back (`prefix_offset`) and emits only what extends the previous window's text, holding
back text that ends in an incomplete character (U+FFFD). Text that could be the start of a stop
string is held back too, so a stream never shows a stop string that the final text trims.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

CONTEXT_TOKENS = 5


class IncrementalDetokenizer:
    def __init__(
        self,
        tokenizer: Any,
        prompt_ids: Sequence[int],
        skip_special_tokens: bool = True,
        spaces_between_special_tokens: bool = True,
        stop: Sequence[str] = (),
        no_stop_trim: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.decode_kw = dict(
            skip_special_tokens=skip_special_tokens,
            spaces_between_special_tokens=spaces_between_special_tokens,
        )
        self.ids: list[int] = list(prompt_ids[-CONTEXT_TOKENS:])
        self.prefix_offset = 0
        self.read_offset = len(self.ids)
        self.text = ""  # everything decoded so far
        self.emitted = 0  # characters of `text` already handed out
        self.stop, self.no_stop_trim = list(stop), no_stop_trim

    def _decode(self, ids: Sequence[int]) -> str:
        try:
            return self.tokenizer.decode(list(ids), **self.decode_kw)
        except TypeError:  # tokenizers without spaces_between_special_tokens
            return self.tokenizer.decode(
                list(ids), skip_special_tokens=self.decode_kw["skip_special_tokens"]
            )

    def add(self, new_ids: Sequence[int]) -> None:
        self.ids.extend(new_ids)
        prefix_text = self._decode(self.ids[self.prefix_offset : self.read_offset])
        full_text = self._decode(self.ids[self.prefix_offset :])
        if len(full_text) > len(prefix_text) and not full_text.endswith("\ufffd"):
            self.text += full_text[len(prefix_text) :]
            self.prefix_offset = self.read_offset
            self.read_offset = len(self.ids)

    def finish(self, matched_stop: str | None = None, regex: bool = False) -> None:
        """Flush what was held back for an incomplete character; trim a matched stop string
        (or, with `regex`, the first match of a stop_regex pattern)."""
        tail = self._decode(self.ids[self.prefix_offset :])
        prefix_text = self._decode(self.ids[self.prefix_offset : self.read_offset])
        if len(tail) > len(prefix_text):
            self.text += tail[len(prefix_text) :]
            self.prefix_offset = self.read_offset = len(self.ids)
        if matched_stop and not self.no_stop_trim:
            if regex:
                match = re.search(matched_stop, self.text)
                cut = match.start() if match else -1
            else:
                cut = self.text.find(matched_stop)
            if cut >= 0:
                self.text = self.text[:cut]

    def delta(self, finished: bool) -> str:
        """New text safe to show now."""
        end = len(self.text)
        if not finished and self.stop and not self.no_stop_trim:
            end -= _stop_prefix_overlap(self.text, self.stop)
        end = max(end, self.emitted)
        out = self.text[self.emitted : end]
        self.emitted = end
        return out


def _stop_prefix_overlap(text: str, stops: Sequence[str]) -> int:
    """The longest suffix of text that is a proper prefix of some stop string (or where a
    whole stop string sits, which the scheduler is about to finish on)."""
    best = 0
    for s in stops:
        pos = text.find(s)
        if pos >= 0:
            best = max(best, len(text) - pos)
            continue
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                best = max(best, k)
                break
    return best
