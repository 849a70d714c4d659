"""Qwen3: an optional `<think>...</think>` block at the start of the output.

Qwen3's hybrid models think by default (`<think>\\n...\\n</think>\\n\\nanswer`); with
`enable_thinking=False` their template puts an empty `<think>\\n\\n</think>\\n\\n` into the
prompt and the output is the answer alone, which is then all content. Qwen3-*-Thinking-2507
templates open `<think>` in the prompt, so their output starts mid-thought: that is
`qwen3-thinking` (the deepseek-r1 behaviour).
"""

from sglang.parsers.reasoning.base import ReasoningParser


class Qwen3ReasoningParser(ReasoningParser):
    name = "qwen3"
    starts_in_reasoning = False


class Qwen3ThinkingReasoningParser(ReasoningParser):
    name = "qwen3-thinking"
    starts_in_reasoning = True
