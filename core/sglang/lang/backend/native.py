"""Generation, scoring and prefix caching over SGLang's native /generate interface, shared by
the HTTP endpoint and the in-process engine (they differ only in how a request travels).

Scoring a choice: the prompt's tokens are sent once with max_new_tokens 0 (it then sits in the
radix cache), then every prompt+choice in one batch with max_new_tokens 0, return_logprob and
logprob_start_len = len(prompt tokens): each reply's input_token_logprobs are exactly the
choice's tokens, each scored given everything before it. Choices are tokenized on their own
(no special tokens) and appended to the prompt's tokens, so a choice's tokens do not depend on
how the prompt ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sglang.lang.backend.base import Backend, Prompt, Scores
from sglang.lang.ir import GenParams

PREFILL_ONLY = {"max_new_tokens": 0}


class NativeBackend(Backend):
    # --- transport, supplied by the subclass ------------------------------------------------
    def _generate(self, body: dict[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
        """One /generate request body -> its reply (a list for batched prompts)."""
        raise NotImplementedError

    def _generate_stream(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Streamed /generate: cumulative chunks ({text, output_ids, meta_info})."""
        raise NotImplementedError

    def _tokenize(self, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
        raise NotImplementedError

    # --- the backend interface --------------------------------------------------------------
    def _prompt_body(self, prompt: Prompt) -> dict[str, Any]:
        if prompt.add_special_tokens:  # the server encodes text exactly so
            return {"text": prompt.text}
        return {"input_ids": self._tokenize([prompt.text], False)[0]}

    def _gen_body(self, prompt: Prompt, params: GenParams) -> dict[str, Any]:
        return {
            **self._prompt_body(prompt),
            "sampling_params": params.sampling_params(),
            **params.logprob_fields(),
        }

    def generate(self, prompt: Prompt, params: GenParams) -> tuple[str, dict[str, Any]]:
        reply = self._generate(self._gen_body(prompt, params))
        return reply["text"], reply["meta_info"]

    def generate_stream(
        self, prompt: Prompt, params: GenParams
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        sent = 0
        for chunk in self._generate_stream(self._gen_body(prompt, params)):
            text = chunk["text"]
            yield text[sent:], chunk["meta_info"]
            sent = len(text)

    def score(self, prompt: Prompt, choices: list[str]) -> Scores:
        if prompt.add_special_tokens:
            prefix = self._tokenize([prompt.text], True)[0] if prompt.text else []
            tails = self._tokenize(choices, False)
        else:
            prefix, *tails = self._tokenize([prompt.text, *choices], False)
        for choice, tail in zip(choices, tails):
            if not tail:
                raise ValueError(f"the choice {choice!r} encodes to no tokens")
        metas = []
        if prefix:
            metas.append(self._generate({"input_ids": prefix, "sampling_params": PREFILL_ONLY}))
            metas[0] = metas[0]["meta_info"]
        replies = self._generate(
            {
                "input_ids": [prefix + tail for tail in tails],
                "sampling_params": PREFILL_ONLY,
                "return_logprob": True,
                "logprob_start_len": len(prefix),
            }
        )
        logprobs = [
            [tuple(x) for x in r["meta_info"]["input_token_logprobs"] if x[0] is not None]
            for r in replies
        ]
        return Scores(logprobs, metas + [r["meta_info"] for r in replies])

    def cache_prefix(self, prompt: Prompt) -> dict[str, Any] | None:
        if not prompt.text:
            return None
        return self._generate({**self._prompt_body(prompt), "sampling_params": PREFILL_ONLY})[
            "meta_info"
        ]
