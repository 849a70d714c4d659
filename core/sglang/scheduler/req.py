"""A request as the scheduler sees it, and how it finishes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from sglang.sampling.params import SamplingParams


@dataclass
class FinishReason:
    type: str  # "stop" | "length" | "abort"
    matched: int | str | None = None  # the token id, stop string or stop_regex that ended it
    message: str | None = None
    regex: bool = False  # matched is a stop_regex pattern

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.type == "stop":
            out["matched"] = self.matched
        if self.type == "length":
            out["length"] = self.matched
        if self.message:
            out["message"] = self.message
        return out


@dataclass(eq=False)
class Req:
    """Token ids in, token ids out. Compared by identity (lists of running and waiting
    requests are searched often). KV bookkeeping:

    fill_ids = prompt_ids + output_ids
    fill_ids[:kv_len]      have KV, at req_to_token[row, :kv_len]
    fill_ids[:prefix_len]  of those, are in the prefix cache (locked via last_node): the
                           matched prefix, and after each prefill forward everything computed
                           so far (KVManager.cache_unfinished)
    fill_ids[kv_len:]      still to be fed to the model (prefill chunks, or the last
                           sampled token in decode)
    """

    rid: str
    prompt_ids: list[int]
    params: SamplingParams
    eos_ids: frozenset[int] = frozenset()
    return_logprob: bool = False
    logprob_start_len: int = -1  # prompt logprobs from this position on; -1: none
    top_logprobs_num: int = 0
    priority: int | None = None  # --enable-priority-scheduling's key (None counts as 0)

    output_ids: list[int] = field(default_factory=list)
    finished: FinishReason | None = None
    row: int | None = None
    kv_len: int = 0
    prefix_len: int = 0
    last_node: Any = None
    cached_tokens: int = 0  # prompt tokens served from the prefix cache (first admission)
    admitted_once: bool = False
    prefix_deferred: bool = False  # held back once for an in-batch shared prefix (see scheduler)
    retractions: int = 0
    generator: torch.Generator | None = None  # see sampling_generator
    arrival_time: float = field(default_factory=time.monotonic)

    output_logprobs: list[float] = field(default_factory=list)
    output_top_logprobs: list[list[tuple[int, float]]] = field(default_factory=list)
    prompt_logprobs: list[float | None] = field(default_factory=list)
    prompt_top_logprobs: list[list[tuple[int, float]] | None] = field(default_factory=list)
    prompt_logprobs_done: bool = False
    sent_len: int = 0  # output tokens already sent to the frontend

    grammar: Any = None  # a GrammarMatcher that has accepted exactly output_ids
    grammar_future: Any = None  # the compilation this request waits for (grammar queue)
    grammar_wait_start: float = 0.0

    def sampling_generator(self) -> torch.Generator:
        """The request's own random generator (seeded by `sampling_seed`, else at random),
        made when it first samples: a greedy request never does (seeding one from the
        system's entropy cost ~30-90 us of every request's admission)."""
        if self.generator is None:
            self.generator = torch.Generator()
            seed = self.params.sampling_seed
            if seed is None:
                self.generator.seed()
            else:
                self.generator.manual_seed(int(seed))
        return self.generator

    @property
    def fill_ids(self) -> list[int]:
        return self.prompt_ids + self.output_ids

    @property
    def wants_prompt_logprobs(self) -> bool:
        return self.return_logprob and 0 <= self.logprob_start_len < len(self.prompt_ids)

    def remaining_new_tokens(self) -> int:
        if self.params.max_new_tokens is None:
            return 0
        return max(self.params.max_new_tokens - len(self.output_ids), 0)
