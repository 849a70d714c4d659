"""Reasoning parsers on recorded outputs, whole and streamed over every chunking.

Recorded outputs, written as the models emit them:
- DeepSeek-R1 (template since 2025-01 and R1-0528 open `<think>\\n` in the prompt): the
  output starts mid-thought and closes it with `</think>` before the answer; earlier R1
  builds wrote `<think>` themselves.
- Qwen3 (Qwen3-8B, hybrid thinking): `<think>\\n...\\n</think>\\n\\nanswer`; with
  enable_thinking=False the template pre-fills an empty think block and the output is the
  answer alone. Qwen3-*-Thinking-2507 behave like R1 (`qwen3-thinking`).
"""

from __future__ import annotations

import random

import pytest
from sglang.parsers.reasoning import REASONING_PARSERS, get_reasoning_parser

R1_THOUGHT = (
    "Okay, the user is asking for the sum of 17 and 25. Let me add them: 17 + 25 = 42.\n\n"
    "Wait, let me double-check: 17 + 20 = 37, plus 5 is 42. Yes, that's right."
)
QWEN_THOUGHT = (
    'Okay, the user wants a haiku about autumn. Five, seven, five syllables. "Crimson leaves '
    'descend" is five. Maybe mention a <tag>-like thing? No, keep it simple.'
)
HAIKU = "Crimson leaves descend,\nwhispering to the cold earth—\nautumn says goodbye."

# (parser, recorded output, expected reasoning, expected content)
CASES = [
    (
        "deepseek-r1",
        R1_THOUGHT + "\n</think>\n\n17 + 25 = **42**.",
        R1_THOUGHT,
        "17 + 25 = **42**.",
    ),
    (
        "deepseek-r1",
        "<think>\n" + R1_THOUGHT + "\n</think>\n\nThe answer is 42.",
        R1_THOUGHT,
        "The answer is 42.",
    ),
    # cut by max_tokens before </think>: all reasoning (a dangling partial tag included)
    ("deepseek-r1", R1_THOUGHT + "\n</thi", R1_THOUGHT + "\n</thi", ""),
    ("deepseek-r1", "Hmm.\n</think>", "Hmm.", ""),
    ("deepseek-r1", "</think>Only an answer.", "", "Only an answer."),
    ("qwen3", "<think>\n" + QWEN_THOUGHT + "\n</think>\n\n" + HAIKU, QWEN_THOUGHT, HAIKU),
    ("qwen3", "<think>\n\n</think>\n\n" + HAIKU, "", HAIKU),
    # thinking disabled by the template: the answer alone, exactly as written
    ("qwen3", HAIKU, "", HAIKU),
    ("qwen3", "  <thinking is fun>  ", "", "  <thinking is fun>  "),
    ("qwen3", "<thi", "", "<thi"),
    (
        "qwen3",
        "<think>\nStill thinking when max_tokens hit",
        "Still thinking when max_tokens hit",
        "",
    ),
    ("qwen3-thinking", QWEN_THOUGHT + "\n</think>\n\n" + HAIKU, QWEN_THOUGHT, HAIKU),
    ("qwen3", "", "", ""),
    ("deepseek-r1", "", "", ""),
]


def chunkings(text: str):
    """Every split into deltas of sizes 1, 2, 3 and 7 (all alignments), and a random one."""
    for k in (1, 2, 3, 7):
        for first in range(1, k + 1):
            yield [text[:first]] + [text[i : i + k] for i in range(first, len(text), k)]
    if len(text) > 1:
        rng = random.Random(len(text))
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, 12)))
        yield [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_whole_and_streamed(case):
    name, text, reasoning, content = case
    parser = get_reasoning_parser(name)
    assert parser.parse(text) == (reasoning, content)
    for pieces in chunkings(text):
        s = parser.stream()
        got_r, got_c = [], []
        for p in pieces:
            r, c = s.feed(p)
            got_r.append(r)
            got_c.append(c)
        r, c = s.finish()
        assert ("".join(got_r) + r, "".join(got_c) + c) == (reasoning, content), pieces


def test_tags_never_leak_while_streaming():
    """A tag split across deltas shows in neither stream; reasoning ends before content."""
    text = "<think>\n" + QWEN_THOUGHT + "\n</think>\n\n" + HAIKU
    s = get_reasoning_parser("qwen3").stream()
    seen_content = False
    for ch in text:
        r, c = s.feed(ch)
        assert "<" not in r or r in QWEN_THOUGHT
        assert not (r and seen_content)
        seen_content = seen_content or bool(c)
        assert "think>" not in c
    assert s.finish() == ("", "")


def test_registry():
    assert set(REASONING_PARSERS) >= {"deepseek-r1", "qwen3"}
    with pytest.raises(ValueError, match="unknown reasoning parser"):
        get_reasoning_parser("o1")
