"""Hermes / Qwen tool calls: JSON objects inside `<tool_call>` tags.

The format of NousResearch's Hermes-2-Pro / Hermes-3 function calling and of Qwen2.5 and
Qwen3 (their chat templates ask for `<tool_call>\n{"name": <function-name>, "arguments":
<args-json-object>}\n</tool_call>` per call). Output:

    I'll look that up.
    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>
    <tool_call>
    {"name": "get_time", "arguments": {"tz": "Europe/Paris"}}
    </tool_call>

Text before and between the blocks is content. Hermes-2-Pro writes "arguments" before
"name"; such a call is parsed once its object is complete. A missing `</tool_call>` (the
output ended, or the model went on writing) ends the call at its object's closing brace.
"""

from __future__ import annotations

from sglang.parsers.tool.base import StreamingToolParser, ToolParser

OPEN, CLOSE = "<tool_call>", "</tool_call>"


class HermesStream(StreamingToolParser):
    end_tokens = ("<|im_end|>", "<|eot_id|>", "<|endoftext|>")

    def _step(self, final: bool) -> bool:
        if self.state == "content":
            i = self._scan_content((OPEN,), final)
            if i < 0:
                return False
            self.pos = self.fallback_to = i + len(OPEN)
            self.state = "call"
            return True
        if self.state == "close":  # after a call object: the closing tag, if it is there
            if not self._skip_whitespace():
                return False
            rest = self.text[self.pos : self.pos + len(CLOSE)]
            if rest == CLOSE:
                self.pos += len(CLOSE)
            elif CLOSE.startswith(rest) and not final:
                return False
            self.state, self.skip_ws = "content", True
            return True
        return self._step_object(final)

    def _call_done(self) -> None:
        self.state = "close"


class HermesToolParser(ToolParser):
    name = "hermes"
    markers = (OPEN,)
    streaming_class = HermesStream
