"""SamplingParams with SGLang's names, defaults and validation.

Invalid values raise `ValueError` naming the parameter, which the server turns into HTTP 400.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

GREEDY_EPS = 1e-6  # temperatures below this decode greedily (top_k = 1)


@dataclass
class SamplingParams:
    max_new_tokens: int | None = 128
    min_new_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float = 1.0
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    no_stop_trim: bool = False
    logit_bias: dict[int, float] = field(default_factory=dict)
    n: int = 1
    sampling_seed: int | None = None
    json_schema: str | None = None
    regex: str | None = None
    ebnf: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SamplingParams:
        d = dict(d or {})
        if "seed" in d and "sampling_seed" not in d:
            d["sampling_seed"] = d.pop("seed")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown sampling parameter(s): {', '.join(unknown)}")
        p = cls(**{k: v for k, v in d.items() if v is not None or k == "max_new_tokens"})
        p.normalize()
        p.verify()
        return p

    def normalize(self) -> None:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = [s for s in (self.stop or []) if s]
        self.stop_token_ids = [int(t) for t in (self.stop_token_ids or [])]
        self.logit_bias = {int(k): float(v) for k, v in (self.logit_bias or {}).items()}
        if 0 <= self.temperature < GREEDY_EPS:
            self.temperature, self.top_k = 0.0, 1
        if self.top_k is None or self.top_k == 0:  # 0 and -1 both mean no top-k limit
            self.top_k = -1

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0.0 or self.top_k == 1

    def verify(self, vocab_size: int | None = None) -> None:
        def bad(name: str, why: str) -> None:
            raise ValueError(f"{name} {why}, got {getattr(self, name)!r}")

        if self.temperature < 0:
            bad("temperature", "must be >= 0")
        if not 0 < self.top_p <= 1:
            bad("top_p", "must be in (0, 1]")
        if not 0 <= self.min_p <= 1:
            bad("min_p", "must be in [0, 1]")
        if self.top_k < -1:
            bad("top_k", "must be -1 or 0 (all) or >= 1")
        if not -2 <= self.frequency_penalty <= 2:
            bad("frequency_penalty", "must be in [-2, 2]")
        if not -2 <= self.presence_penalty <= 2:
            bad("presence_penalty", "must be in [-2, 2]")
        if not 0 < self.repetition_penalty <= 2:
            bad("repetition_penalty", "must be in (0, 2]")
        if self.max_new_tokens is not None and self.max_new_tokens < 0:
            bad("max_new_tokens", "must be >= 0")
        if self.min_new_tokens < 0:
            bad("min_new_tokens", "must be >= 0")
        if self.max_new_tokens is not None and self.min_new_tokens > self.max_new_tokens:
            bad("min_new_tokens", "must be <= max_new_tokens")
        if self.n < 1:
            bad("n", "must be >= 1")
        constraints = [k for k in ("json_schema", "regex", "ebnf") if getattr(self, k) is not None]
        if len(constraints) > 1:
            raise ValueError(
                f"only one of json_schema, regex, ebnf may be given; got {constraints}"
            )
        if vocab_size is not None:
            for tok in [*self.logit_bias, *self.stop_token_ids]:
                if not 0 <= tok < vocab_size:
                    raise ValueError(
                        f"token id {tok} is outside the vocabulary (size {vocab_size})"
                    )
