"""Messages between the frontend and the scheduler process (pickled over ZeroMQ)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sglang.sampling.params import SamplingParams
from sglang.server_args import ServerArgs


@dataclass
class TokenizedRequest:
    rid: str
    prompt_ids: list[int]
    params: SamplingParams
    return_logprob: bool = False
    logprob_start_len: int = -1
    top_logprobs_num: int = 0
    priority: int | None = None  # with --enable-priority-scheduling (scheduler/policy.py)


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


@dataclass(frozen=True)
class SchedulerInfo:
    """What the scheduler process reports once it is ready (over its ready pipe). `settings`
    is the record it runs with: the user's, resolved, with the derived max_running_requests."""

    backend: str
    device: str
    kernels: dict[str, str]  # op -> chosen kernel
    architecture: str
    dtype: str
    quantization: str | None
    quantization_layers: Any
    context_len: int
    vocab_size: int
    max_total_tokens: int
    max_running_requests: int
    chunked_prefill_size: int
    eos_token_ids: list[int]
    settings: ServerArgs
    parallel: dict[str, Any] = field(default_factory=dict)  # what rank 0 holds (layout.py)
    rank_pids: list[int] = field(default_factory=list)  # this node's ranks' process ids
    # per data-parallel replica: its index, device, rank process ids and rank 0's layout
    replicas: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON view (/get_server_info, Engine.server_info): the fields, with the settings
        (less the API key) under "server_args"."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "settings"}
        settings = {k: v for k, v in asdict(self.settings).items() if k != "api_key"}
        return {**out, "server_args": settings}


@dataclass(frozen=True)
class StartupFailure:
    """The scheduler process could not start: a one-line error, its exit code, the traceback."""

    error: str
    exit_code: int
    traceback: str
