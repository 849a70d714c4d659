"""SamplingParams with SGLang's names, defaults and validation.

Invalid values raise `ValueError` naming the parameter, which the server turns into HTTP 400.
Every field upstream SGLang accepts is either a field here or in `REFUSED`: accepted when it
asks for nothing (null, its default), refused by name otherwise; never silently dropped.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field, fields
from typing import Any

GREEDY_EPS = 1e-6  # temperatures below this decode greedily (top_k = 1)
MAX_STOP_COUNT = 32  # SGLang's limits on stop strings and stop_regex patterns
MAX_STOP_REGEX_LEN = 256  # bytes
INT_FIELDS = ("max_new_tokens", "min_new_tokens", "top_k", "n", "sampling_seed", "stream_interval")
NUMBER_FIELDS = (
    "temperature",
    "top_p",
    "min_p",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
)
FLAG_FIELDS = ("ignore_eos", "skip_special_tokens", "spaces_between_special_tokens", "no_stop_trim")
INT64_LIMIT = 1 << 63  # integers become int64 tensors and generator seeds

# Upstream fields this engine does not implement: name -> (values that ask for nothing, error).
REFUSED: dict[str, tuple[tuple[Any, ...], str]] = {
    "structural_tag": (
        (None, ""),
        "structural_tag is not supported (use json_schema, regex, ebnf)",
    ),
    "custom_params": ((None, {}), "custom_params is not supported (no custom logit processors)"),
    "beam_width": ((None, 1), "beam_width above 1 is not supported (no beam search)"),
    "watermark": ((None,), "watermark is not supported"),
}


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
    stop_regex: list[str] = field(default_factory=list)
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
    stream_interval: int | None = None  # tokens per streamed chunk; None: the server's

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, vocab_size: int | None = None) -> SamplingParams:
        """The one validation of a request's parameters: names, types, ranges (token ids
        within `vocab_size` when given)."""
        d = dict(d or {})
        if "seed" in d and "sampling_seed" not in d:
            d["sampling_seed"] = d.pop("seed")
        for name, (inert, error) in REFUSED.items():
            if name in d:
                value = d.pop(name)
                if not any(value == v and type(value) is type(v) for v in inert):
                    raise ValueError(f"{error}, got {value!r}")
        known = _field_names(cls)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown sampling parameter(s): {', '.join(unknown)}")
        p = cls(**{k: v for k, v in d.items() if v is not None or k == "max_new_tokens"})
        p.normalize()
        p.verify(vocab_size)
        return p

    def normalize(self) -> None:
        self._verify_types()
        self.stop = _strings(self.stop, "stop")
        self.stop_regex = _strings(self.stop_regex, "stop_regex")
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
        if self.stream_interval is not None and (
            not isinstance(self.stream_interval, int) or self.stream_interval < 1
        ):
            bad("stream_interval", "must be an integer >= 1")
        if self.sampling_seed is not None and not isinstance(self.sampling_seed, int):
            bad("sampling_seed", "must be an integer")
        if len(self.stop) > MAX_STOP_COUNT:
            raise ValueError(f"stop takes at most {MAX_STOP_COUNT} strings, got {len(self.stop)}")
        self._verify_stop_regex()
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

    def _verify_types(self) -> None:
        """Before normalize converts anything: a wrong type or a non-finite number is a
        ValueError naming the field, not a crash here or in the scheduler process."""
        for name in INT_FIELDS:
            v = getattr(self, name)
            if v is not None and not (_is_int(v) and -INT64_LIMIT <= v < INT64_LIMIT):
                raise ValueError(f"{name} must be a 64-bit integer, got {v!r}")
        for name in NUMBER_FIELDS:
            v = getattr(self, name)
            if not (_is_number(v) and math.isfinite(v)):
                raise ValueError(f"{name} must be a finite number, got {v!r}")
        for name in FLAG_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("json_schema", "regex", "ebnf"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise ValueError(f"{name} must be a string, got {v!r}")
        ids = self.stop_token_ids
        if ids is not None and not (isinstance(ids, list) and all(_is_int(t) for t in ids)):
            raise ValueError(f"stop_token_ids must be a list of integers, got {ids!r}")
        bias = self.logit_bias
        if bias is not None and not (
            isinstance(bias, dict)
            and all(_is_number(b) and math.isfinite(b) for b in bias.values())
        ):
            raise ValueError(f"logit_bias must map token ids to finite numbers, got {bias!r}")

    def _verify_stop_regex(self) -> None:
        if len(self.stop_regex) > MAX_STOP_COUNT:
            raise ValueError(
                f"stop_regex takes at most {MAX_STOP_COUNT} patterns, got {len(self.stop_regex)}"
            )
        for pattern in self.stop_regex:
            if len(pattern.encode()) > MAX_STOP_REGEX_LEN:
                raise ValueError(
                    f"stop_regex {pattern[:40]!r}... is over the {MAX_STOP_REGEX_LEN}-byte limit"
                )
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"stop_regex {pattern!r} is not a valid regex: {e}") from None


def _field_names(cls: type, _cache: dict = {}) -> frozenset[str]:  # noqa: B006 (the cache)
    names = _cache.get(cls)
    if names is None:
        names = _cache[cls] = frozenset(f.name for f in fields(cls))
    return names


def _is_int(v: Any) -> bool:  # numpy's integers too (defaults read from a GGUF file)
    t = type(v)  # the common types first: the ABC checks cost ~1 us each
    return t is int or (t is not bool and t is not float and isinstance(v, numbers.Integral))


def _is_number(v: Any) -> bool:
    t = type(v)
    return t is float or t is int or (t is not bool and isinstance(v, numbers.Real))


def _strings(value: Any, name: str) -> list[str]:
    """A string or a list of strings as a list without empty strings."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a string or a list of strings, got {value!r}")
    return [v for v in value if v]
