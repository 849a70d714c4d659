"""Llama 3.x JSON tool calls.

Meta's Llama 3.1/3.2/3.3 prompt format ("JSON based tool calling", llama-models'
prompt_format docs and the models' chat templates, which ask for `{"name": function name,
"parameters": dictionary of argument name and its value}`): the model answers with the call
object alone, optionally after `<|python_tag|>` (the ipython environment's marker), and may
write several objects separated by `;`. Output:

    <|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}<|eom_id|>

A call is recognised after `<|python_tag|>` anywhere, or when the output itself starts with
`{` (what the model writes without the tag, and what a `tool_choice` JSON schema produces).
Text before the tag is content; `"arguments"` is accepted for `"parameters"`.
"""

from __future__ import annotations

from sglang.parsers.tool.base import StreamingToolParser, ToolParser, first_non_space

PYTHON_TAG = "<|python_tag|>"


class Llama3Stream(StreamingToolParser):
    end_tokens = ("<|eom_id|>", "<|eot_id|>")

    def _step(self, final: bool) -> bool:
        if self.state == "content":
            if self.at_start and not self.skip_ws:
                j = first_non_space(self.text, self.pos)
                if j < 0:
                    if final:
                        self._content(len(self.text))
                    return False
                if self.text[j] == "{":
                    self.fallback_from, self.fallback_to = self.pos, j
                    self.pos, self.state = j, "call"
                    return True
                self.at_start = False
            i = self._scan_content((PYTHON_TAG,), final)
            if i < 0:
                return False
            self.pos = self.fallback_to = i + len(PYTHON_TAG)
            self.state = "call"
            return True
        if self.state == "after":  # a call ended: `;` and the next call, or content
            if not self._skip_whitespace():
                return False
            if self.text[self.pos] == ";":
                self.pos += 1
                self.state = "next"
            else:
                self.state = "content"
            return True
        if self.state == "next":
            if not self._skip_whitespace():
                return False
            if self.text[self.pos] == "{":
                self.fallback_from = self.fallback_to = self.pos
                self.state = "call"
            else:
                self.state = "content"
            return True
        return self._step_object(final)

    def _call_done(self) -> None:
        self.state = "after"


class Llama3ToolParser(ToolParser):
    name = "llama3"
    markers = (PYTHON_TAG,)
    streaming_class = Llama3Stream

    def detect(self, text: str) -> bool:
        return PYTHON_TAG in text or text.lstrip().startswith("{")
