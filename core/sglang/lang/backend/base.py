"""What a program needs from a model: generation, choice scoring, prefix caching, a chat
template. One implementation per file: `runtime_endpoint.py` (our server over HTTP),
`runtime.py` (an in-process Engine), `openai.py` (any OpenAI-compatible server).

Meta dicts follow /generate's `meta_info`: `prompt_tokens`, `cached_tokens` (prompt tokens the
server's prefix cache served), `completion_tokens`, `finish_reason`, and logprobs when asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sglang.lang.chat_template import ChatTemplate
from sglang.lang.ir import GenParams


@dataclass
class Prompt:
    """A program's state as a backend sees it."""

    text: str
    messages: list[dict[str, Any]] = field(default_factory=list)  # finished role messages
    role: str | None = None  # the role open now, if any
    role_text: str = ""  # text appended since that role began
    add_special_tokens: bool = True  # False when the text already starts with BOS


@dataclass
class Scores:
    """Per choice, the logprob of each of its tokens given the prompt and the tokens before
    it: [(logprob, token_id, None), ...] (None: no token text). metas: one per request."""

    token_logprobs: list[list[tuple[float, int | None, Any]]]
    metas: list[dict[str, Any]]


class FeatureUnavailable(RuntimeError):
    """The backend's server cannot do what the program asks (it names what is missing)."""


class Backend:
    is_chat_model = False  # chat-only APIs: gen must come right after an assistant role begins

    def chat_template(self) -> ChatTemplate:
        raise NotImplementedError

    def generate(self, prompt: Prompt, params: GenParams) -> tuple[str, dict[str, Any]]:
        """The generated text and its meta."""
        raise NotImplementedError

    def generate_stream(
        self, prompt: Prompt, params: GenParams
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(new text, meta so far) as it is generated. Default: one piece at the end."""
        yield self.generate(prompt, params)

    def score(self, prompt: Prompt, choices: list[str]) -> Scores:
        """Log-likelihood of each choice as a continuation of the prompt, in one batched call
        after the prompt itself was sent once (so every choice reuses its cached prefix)."""
        raise FeatureUnavailable(f"{type(self).__name__} cannot score choices")

    def cache_prefix(self, prompt: Prompt) -> dict[str, Any] | None:
        """Send the prompt once without generating, so later requests sharing it hit the
        prefix cache. Returns the request's meta, None where the backend cannot."""
        return None

    def flush_cache(self) -> bool:
        return False

    def get_server_info(self) -> dict[str, Any]:
        return {}

    def shutdown(self) -> None:
        """Release what the backend started (an in-process engine); a no-op for clients."""
