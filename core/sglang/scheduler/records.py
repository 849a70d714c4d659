"""Records the scheduler's parts pass between them, and the one it sends to the frontend."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sglang.scheduler.req import FinishReason, Req

INIT_NEW_TOKEN_RATIO = 0.7
MIN_NEW_TOKEN_RATIO = 0.7 * 0.14
NEW_TOKEN_RATIO_DECAY = (INIT_NEW_TOKEN_RATIO - MIN_NEW_TOKEN_RATIO) / 600


@dataclass
class Queues:
    """Where every request the scheduler holds is (besides the grammar queue): waiting for a
    prefill, running (decoding), or the one request whose prompt is being prefilled in chunks."""

    waiting: deque[Req] = field(default_factory=deque)
    running: list[Req] = field(default_factory=list)
    chunked: Req | None = None

    def occupying(self) -> list[Req]:
        """The requests that hold KV and will grow: running, and the chunked one."""
        return self.running + ([self.chunked] if self.chunked else [])

    def remove(self, req: Req) -> None:
        if req in self.waiting:
            self.waiting.remove(req)
        if req in self.running:
            self.running.remove(req)
        if req is self.chunked:
            self.chunked = None


@dataclass
class NewTokenRatio:
    """The share of its remaining output tokens each running request is expected to need
    (admission reserves that much KV): decays while nothing is retracted, rises after."""

    value: float = INIT_NEW_TOKEN_RATIO

    def decay(self) -> None:
        self.value = max(MIN_NEW_TOKEN_RATIO, self.value - NEW_TOKEN_RATIO_DECAY)

    def raise_after_retraction(self) -> None:
        self.value = min(1.0, self.value + 0.1)


@dataclass
class PrefillPlan:
    """Requests admitted to one prefill forward, each with its number of new tokens (the
    chunked request first, if any). Their KV slots are already allocated."""

    reqs: list[Req]
    lens: list[int]


@dataclass
class StepOutput:
    """What one request produced in one step (sent to the frontend)."""

    rid: str
    new_token_ids: list[int]
    finished: FinishReason | None
    output_logprobs: list[float] = field(default_factory=list)
    output_top_logprobs: list[Any] = field(default_factory=list)
    prompt_logprobs: list[float | None] | None = None
    prompt_top_logprobs: list[Any] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    retractions: int = 0


@dataclass
class SchedulerStats:
    steps: int = 0
    prefill_steps: int = 0
    decode_steps: int = 0
    mixed_steps: int = 0  # prefill forwards that also decoded the running requests
    overlapped_decode_steps: int = 0  # launched before the previous step was processed
    retractions: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
