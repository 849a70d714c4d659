"""DeepSeek-R1: the output starts inside the reasoning and the reasoning ends at </think>.

DeepSeek-R1's chat template (since the 2025-01 update, and R1-0528) ends the generation
prompt with `<think>\\n`, so the model's output begins mid-thought:

    Okay, the user asks for 2 + 2. That is 4.
    </think>

    2 + 2 = 4.

Earlier R1 builds wrote the `<think>` themselves; a leading `<think>` is skipped. An output
that never closes its thinking (cut by max_tokens) is all reasoning.
"""

from sglang.parsers.reasoning.base import ReasoningParser


class DeepSeekR1ReasoningParser(ReasoningParser):
    name = "deepseek-r1"
    starts_in_reasoning = True
