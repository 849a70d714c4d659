"""A scripted backend for tests that need no server: it records every call, generates from a
rule, and scores choices from a table of token logprobs."""

from __future__ import annotations

import threading
import time

from sglang.lang.backend.base import Backend, Prompt, Scores
from sglang.lang.chat_template import from_jinja

CHATML = (
    "{% for m in messages %}"
    "{% if loop.first and m['role'] != 'system' %}<|im_start|>system\nDefault.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class FakeBackend(Backend):
    def __init__(self, reply=None, scores=None, delay: float = 0.0, chat: bool = False):
        """reply(prompt text, params) -> generated text (default: "<gen N>").
        scores: {choice: [token logprobs]}."""
        self.reply = reply or (lambda text, params: f"<gen {len(self.gens)}>")
        self.scores = scores or {}
        self.delay, self.is_chat_model = delay, chat
        self.gens: list[tuple[Prompt, object]] = []
        self.scored: list[tuple[Prompt, list[str]]] = []
        self.prefixes: list[str] = []
        self.lock = threading.Lock()

    def chat_template(self):
        return from_jinja(CHATML)

    def generate(self, prompt, params):
        time.sleep(self.delay)
        with self.lock:
            self.gens.append((prompt, params))
            text = self.reply(prompt.text, params)
        return text, {"prompt_tokens": len(prompt.text), "cached_tokens": 0}

    def generate_stream(self, prompt, params):
        text, meta = self.generate(prompt, params)
        for i in range(0, len(text), 2):
            time.sleep(self.delay)
            yield text[i : i + 2], meta

    def score(self, prompt, choices):
        with self.lock:
            self.scored.append((prompt, list(choices)))
        logprobs = [[(lp, None, None) for lp in self.scores[c]] for c in choices]
        return Scores(logprobs, [{"prompt_tokens": 10, "cached_tokens": 7}])

    def cache_prefix(self, prompt):
        with self.lock:
            self.prefixes.append(prompt.text)
        return {"prompt_tokens": len(prompt.text), "cached_tokens": 0}
