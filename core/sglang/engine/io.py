"""Messages between the frontend and the scheduler process (pickled over ZeroMQ)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sglang.sampling.params import SamplingParams


@dataclass
class TokenizedRequest:
    rid: str
    prompt_ids: list[int]
    params: SamplingParams
    return_logprob: bool = False
    logprob_start_len: int = -1
    top_logprobs_num: int = 0


@dataclass
class AbortRequest:
    rid: str


@dataclass
class ControlRequest:
    """flush_cache | stats | check_idle | shutdown; answered by a ControlReply with the same id."""

    kind: str
    id: int


@dataclass
class ControlReply:
    id: int
    ok: bool
    payload: dict[str, Any] = field(default_factory=dict)
