"""Stop conditions, checked after every new token (SGLang's order): min_new_tokens, length,
EOS, stop token ids, stop strings, stop_regex (both on decoded text, so they may span tokens)."""

from __future__ import annotations

import functools
import re
from typing import Any

from sglang.scheduler.req import FinishReason, Req


class StopChecker:
    def __init__(self, tokenizer: Any, context_len: int) -> None:
        self.tokenizer, self.context_len = tokenizer, context_len

    def check(self, req: Req) -> FinishReason | None:
        p, out = req.params, req.output_ids
        if not out:
            return None
        if p.max_new_tokens is not None and len(out) >= p.max_new_tokens:
            return FinishReason("length", p.max_new_tokens)
        if len(req.prompt_ids) + len(out) >= self.context_len:
            return FinishReason("length", len(out), "reached the context length")
        if len(out) < p.min_new_tokens:
            return None
        last = out[-1]
        if not p.ignore_eos and last in req.eos_ids:
            return FinishReason("stop", last)
        if last in p.stop_token_ids:
            return FinishReason("stop", last)
        if p.stop and self.tokenizer is not None:
            longest = max(len(s) for s in p.stop)
            # Each token decodes to at least one character, except rare byte pieces: a tail
            # of longest+8 tokens covers any stop string that ends in the newest token.
            tail = self.tokenizer.decode(out[-(longest + 8) :], skip_special_tokens=False)
            for s in p.stop:
                if s in tail:
                    return FinishReason("stop", s)
        if p.stop_regex and self.tokenizer is not None:
            for pattern in p.stop_regex:
                compiled, width = _compiled(pattern)
                window = out if width is None else out[-(width + 8) :]
                if compiled.search(self.tokenizer.decode(window, skip_special_tokens=False)):
                    return FinishReason("stop", pattern, regex=True)
        return None


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> tuple[re.Pattern, int | None]:
    """The pattern and the most characters one match can span (None: unbounded), which bounds
    the output tail to decode, as for stop strings."""
    compiled = re.compile(pattern)
    width = re._parser.parse(pattern).getwidth()[1]
    return compiled, (None if width >= re._parser.MAXREPEAT else width)
