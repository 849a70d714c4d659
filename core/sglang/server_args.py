"""ServerArgs: the engine's and server's settings, with SGLang's names and defaults where the
meaning is the same. `None` means "derive it" (from the backend's defaults hook, the model or
the memory); `sglang.engine.settings.resolve` fills those in, into a new record, once the
backend is known. Frozen: nothing changes a record after it is made (dataclasses.replace makes
another).

A leaf: this module imports nothing of sglang. Names that plugins register (grammar backends,
tool-call and reasoning parsers) are checked one floor up, by `sglang.engine.settings`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEDULE_POLICIES = (
    "fcfs",
    "lpm",
    "dfs-weight",
    "lof",
    "random",
    "priority",
)  # scheduler/policy.py
LOAD_FORMATS = ("auto", "safetensors", "pt", "gguf", "dummy")
DTYPES = ("auto", "bfloat16", "float16", "float32")
SAMPLING_DEFAULTS = ("model", "openai")  # as sglang.model_loader.tokenizer has them
KV_CACHE_DTYPES = ("auto", "fp8_e4m3", "fp8_e5m2")  # SGLang's names
DEFAULT_GRAMMAR_BACKEND = "xgrammar"
LOAD_BALANCE_METHODS = ("round_robin", "shortest_queue")  # SGLang's names for --dp-size


@dataclass(frozen=True)
class ServerArgs:
    model_path: str | None = None  # None: the embedded default model (SmolLM2-135M-Instruct)
    tokenizer_path: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    load_format: str = "auto"
    # None: the checkpoint's own format; a name forces a load-time method (fp8, int4) on a
    # float checkpoint or must match the checkpoint's (sglang.layers.quantization)
    quantization: str | None = None
    kv_cache_dtype: str = "auto"  # auto: the serving dtype; fp8_e4m3 / fp8_e5m2
    context_length: int | None = None
    mem_fraction_static: float | None = None
    max_total_tokens: int | None = None
    max_running_requests: int | None = None
    max_prefill_tokens: int = 16384
    chunked_prefill_size: int | None = None  # -1 disables chunking
    enable_mixed_chunk: bool = False  # decode requests ride in prefill forwards
    schedule_policy: str = "fcfs"
    enable_priority_scheduling: bool = False  # requests' priority orders the queue first
    schedule_low_priority_values_first: bool = False  # else higher values go first
    disable_radix_cache: bool = False
    disable_overlap_schedule: bool = False
    disable_cuda_graph: bool = False  # decode graphs, where the backend's runtime captures
    cuda_graph_max_bs: int | None = None  # None: the backend's per-device default
    cuda_graph_bs: list[int] | None = None  # exact sizes; None: derived from the max
    enable_torch_compile: bool = False  # torch.compile the model in decode graphs up to:
    torch_compile_max_bs: int = 32
    random_seed: int | None = None
    stream_interval: int = 1
    skip_tokenizer_init: bool = False
    served_model_name: str | None = None
    chat_template: str | None = None
    host: str = "127.0.0.1"
    port: int = 30000
    api_key: str | None = None
    log_level: str = "info"
    log_requests: bool = False
    enable_metrics: bool = False
    allow_auto_truncate: bool = False
    attention_backend: str | None = None
    trust_remote_code: bool = False
    grammar_backend: str = DEFAULT_GRAMMAR_BACKEND  # xgrammar | llguidance (sglang.constrained)
    tool_call_parser: str | None = None  # None / "auto": detected from the chat template
    reasoning_parser: str | None = None  # None: no reasoning separation; "auto": detected
    sampling_defaults: str = "model"  # "model": the model's generation config; "openai": none
    # Parallelism (sglang.parallel): ranks per replica, replicas, and the multi-node launch.
    tp_size: int = 1
    ep_size: int = 1  # expert-parallel ranks among the TP ranks (divides tp_size)
    pp_size: int = 1  # pipeline stages, each of tp_size ranks
    dp_size: int = 1
    load_balance_method: str = "round_robin"
    dist_init_addr: str | None = None  # host:port of the rendezvous; None: a local file
    nnodes: int = 1
    node_rank: int = 0
    base_gpu_id: int = 0  # rank r of this node uses device base_gpu_id + r
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> ServerArgs:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown server argument(s): {', '.join(unknown)}")
        args = cls(**kwargs)
        args.validate()
        return args

    @property
    def priority_scheduling(self) -> bool:
        """Whether requests' priority orders the queue (the policy "priority" implies it)."""
        return self.enable_priority_scheduling or self.schedule_policy == "priority"

    def validate(self) -> None:
        if self.schedule_policy not in SCHEDULE_POLICIES:
            raise ValueError(f"--schedule-policy must be one of {SCHEDULE_POLICIES}")
        if self.load_format not in LOAD_FORMATS:
            raise ValueError(f"--load-format must be one of {LOAD_FORMATS}")
        if self.dtype not in DTYPES:
            raise ValueError(f"--dtype must be one of {DTYPES}")
        if self.kv_cache_dtype not in KV_CACHE_DTYPES:
            raise ValueError(f"--kv-cache-dtype must be one of {KV_CACHE_DTYPES}")
        if self.mem_fraction_static is not None and not 0 < self.mem_fraction_static < 1:
            raise ValueError("--mem-fraction-static must be in (0, 1)")
        for name in ("max_total_tokens", "max_running_requests", "context_length"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive")
        if self.cuda_graph_max_bs is not None and self.cuda_graph_max_bs < 1:
            raise ValueError("--cuda-graph-max-bs must be >= 1")
        if self.cuda_graph_bs is not None and min(self.cuda_graph_bs, default=0) < 1:
            raise ValueError("--cuda-graph-bs values must be >= 1")
        if self.torch_compile_max_bs < 1:
            raise ValueError("--torch-compile-max-bs must be >= 1")
        if self.stream_interval < 1:
            raise ValueError("--stream-interval must be >= 1")
        for name in ("tp_size", "ep_size", "pp_size", "dp_size", "nnodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if self.tp_size % self.ep_size:
            raise ValueError(
                f"--ep-size {self.ep_size} must divide --tp-size {self.tp_size} (the experts are "
                "split over the tensor-parallel ranks)"
            )
        if not 0 <= self.node_rank < self.nnodes:
            raise ValueError(f"--node-rank must be in [0, --nnodes {self.nnodes})")
        if self.load_balance_method not in LOAD_BALANCE_METHODS:
            raise ValueError(f"--load-balance-method must be one of {LOAD_BALANCE_METHODS}")
        if self.sampling_defaults not in SAMPLING_DEFAULTS:
            raise ValueError(f"--sampling-defaults must be one of {SAMPLING_DEFAULTS}")
