"""ServerArgs: the engine's and server's settings, with SGLang's names and defaults where the
meaning is the same. `None` means "derive it" (from the backend's defaults hook, the model or
the memory); `resolve_defaults` fills those in once the backend and model are known."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sglang.constrained.registry import DEFAULT_GRAMMAR_BACKEND, grammar_backends
from sglang.layers.quantization.registry import quantization_choices

SCHEDULE_POLICIES = ("fcfs", "lpm")
LOAD_FORMATS = ("auto", "safetensors", "pt", "gguf", "dummy")
DTYPES = ("auto", "bfloat16", "float16", "float32")
SAMPLING_DEFAULTS = ("model", "openai")  # as sglang.model_loader.tokenizer has them
QUANTIZATIONS = quantization_choices()  # SGLang's names (sglang.layers.quantization.registry)
KV_CACHE_DTYPES = ("auto", "fp8_e4m3", "fp8_e5m2")  # SGLang's names


@dataclass
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

    def validate(self) -> None:
        if self.schedule_policy not in SCHEDULE_POLICIES:
            raise ValueError(f"--schedule-policy must be one of {SCHEDULE_POLICIES}")
        if self.load_format not in LOAD_FORMATS:
            raise ValueError(f"--load-format must be one of {LOAD_FORMATS}")
        if self.dtype not in DTYPES:
            raise ValueError(f"--dtype must be one of {DTYPES}")
        if self.quantization is not None and self.quantization not in QUANTIZATIONS:
            raise ValueError(f"--quantization must be one of {QUANTIZATIONS}")
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
        if self.grammar_backend not in grammar_backends():
            raise ValueError(f"--grammar-backend must be one of {grammar_backends()}")
        if self.tool_call_parser is not None and self.tool_call_parser not in tool_parsers():
            raise ValueError(f"--tool-call-parser must be one of {tool_parsers()}")
        if self.reasoning_parser is not None and self.reasoning_parser not in reasoning_parsers():
            raise ValueError(f"--reasoning-parser must be one of {reasoning_parsers()}")
        if self.sampling_defaults not in SAMPLING_DEFAULTS:
            raise ValueError(f"--sampling-defaults must be one of {SAMPLING_DEFAULTS}")

    def resolve_defaults(self, backend_defaults: Any) -> None:
        """Fill unset values from the backend's ServerDefaults, then the core's own."""
        if self.mem_fraction_static is None:  # the backend's KV cap holds only then
            cap = getattr(backend_defaults, "kv_cache_bytes", None)
            self.extra.setdefault("kv_cache_bytes", cap)
        for name in ("mem_fraction_static", "chunked_prefill_size", "max_running_requests"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(backend_defaults, name, None))
        if self.mem_fraction_static is None:
            self.mem_fraction_static = 0.85
        if self.chunked_prefill_size is None:
            self.chunked_prefill_size = 8192
        if self.cuda_graph_bs is None:
            sizes = getattr(backend_defaults, "graph_batch_sizes", None)
            if self.cuda_graph_max_bs is not None or not sizes:
                from sglang.model_executor.graph_runner import graph_batch_sizes

                sizes = graph_batch_sizes(self.cuda_graph_max_bs or 32)
            self.cuda_graph_bs = sorted(sizes)
        self.cuda_graph_max_bs = max(self.cuda_graph_bs)


# --- command line --------------------------------------------------------------------------
def tool_parsers() -> tuple[str, ...]:
    """--tool-call-parser's choices: the formats, their SGLang aliases, and auto."""
    from sglang.server.tool_parsers import ALIASES, TOOL_PARSERS

    return ("auto", *sorted({*TOOL_PARSERS, *ALIASES}))


def reasoning_parsers() -> tuple[str, ...]:
    from sglang.server.reasoning_parsers import REASONING_PARSERS

    return ("auto", *REASONING_PARSERS)


def _group(parser, title: str):
    """A titled group in a parser's --help; a group handed in (the bench scripts') as is."""
    if isinstance(parser, argparse.ArgumentParser):
        return parser.add_argument_group(title)
    return parser


def add_cli_args(parser, attention_backends=None) -> None:
    """SGLang's flag names and defaults where the meaning is the same, each with its help and
    default (a None default's help says what "unset" means). `attention_backends` (the choices
    of --attention-backend) come from the kernel registry, never from a list written here."""
    d = ServerArgs()

    g = _group(parser, "model and tokenizer")
    g.add_argument(
        "--model-path",
        "--model",
        dest="model_path",
        default=None,
        help="a Hugging Face directory (config.json + weights) or a .gguf file, local only "
        "(default: the embedded SmolLM2-135M-Instruct)",
    )
    g.add_argument(
        "--tokenizer-path", default=None, help="tokenizer directory (default: the model's own)"
    )
    g.add_argument(
        "--load-format",
        default=d.load_format,
        choices=LOAD_FORMATS,
        help="weight format; dummy: random weights for the config (benchmarks)",
    )
    g.add_argument(
        "--dtype",
        default=d.dtype,
        choices=DTYPES,
        help="weight and activation dtype; auto: chosen from the model and the backend",
    )
    g.add_argument(
        "--quantization",
        default=None,
        choices=QUANTIZATIONS,
        help="quantization method (default: the checkpoint's own, from its config.json or "
        "hf_quant_config.json); on a float checkpoint fp8 and int4 quantize at load time",
    )
    g.add_argument(
        "--kv-cache-dtype",
        default=d.kv_cache_dtype,
        choices=KV_CACHE_DTYPES,
        help="KV cache storage type; auto: the serving dtype; fp8 types use the "
        "checkpoint's per-layer k/v scales where it has them, else 1.0",
    )
    g.add_argument(
        "--context-length",
        type=int,
        default=None,
        help="longest prompt + output (default: the model's max_position_embeddings)",
    )
    g.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let transformers run a model repository's own code",
    )
    g.add_argument(
        "--served-model-name",
        default=None,
        help="the model name the API reports (default: the model path's last part)",
    )
    g.add_argument(
        "--chat-template",
        default=None,
        help="a Jinja template string or a file holding one (default: the model's)",
    )
    g.add_argument(
        "--skip-tokenizer-init",
        action="store_true",
        help="no tokenizer: requests and outputs are token ids",
    )

    g = _group(parser, "device and kernels")
    g.add_argument(
        "--device",
        default=d.device,
        help="a backend name, or auto: the best available (see `sglang backends`)",
    )
    g.add_argument(
        "--attention-backend",
        default=None,
        choices=attention_backends,
        help="backend whose attention kernels to use (default: the device's)",
    )
    g.add_argument(
        "--random-seed",
        type=int,
        default=None,
        help="seed of the device's generators (default: random)",
    )

    g = _group(parser, "HTTP server")
    g.add_argument("--host", default=d.host, help="address to listen on")
    g.add_argument("--port", type=int, default=d.port, help="port to listen on")
    g.add_argument(
        "--api-key",
        default=None,
        help="require `Authorization: Bearer KEY` on every route but /health (default: no key)",
    )
    g.add_argument(
        "--log-level",
        default=d.log_level,
        type=str.lower,
        choices=("debug", "info", "warning", "error", "critical"),
        help="log level",
    )
    g.add_argument(
        "--log-requests",
        action="store_true",
        help="log each HTTP request with its status and latency",
    )
    g.add_argument(
        "--enable-metrics",
        action="store_true",
        help="serve Prometheus metrics at /metrics (404 without this flag)",
    )

    g = _group(parser, "memory and scheduling")
    g.add_argument(
        "--mem-fraction-static",
        type=float,
        default=None,
        help="fraction of device memory for weights and KV cache "
        "(default: the backend's per-device value)",
    )
    g.add_argument(
        "--max-total-tokens",
        type=int,
        default=None,
        help="KV cache size in tokens (default: what the memory fraction allows)",
    )
    g.add_argument(
        "--max-running-requests",
        type=int,
        default=None,
        help="requests decoded together (default: derived from the KV cache size)",
    )
    g.add_argument(
        "--max-prefill-tokens",
        type=int,
        default=d.max_prefill_tokens,
        help="prompt tokens admitted in one prefill batch",
    )
    g.add_argument(
        "--chunked-prefill-size",
        type=int,
        default=None,
        help="longest prefill chunk; -1 disables chunking "
        "(default: the backend's per-device value)",
    )
    g.add_argument(
        "--enable-mixed-chunk",
        action="store_true",
        help="run the running requests' decode tokens inside each prefill forward",
    )
    g.add_argument(
        "--schedule-policy",
        default=d.schedule_policy,
        choices=SCHEDULE_POLICIES,
        help="order of waiting requests: fcfs, or lpm (longest prefix match first)",
    )
    g.add_argument(
        "--disable-radix-cache",
        action="store_true",
        help="no prefix cache (every prompt is computed in full)",
    )
    g.add_argument(
        "--disable-overlap-schedule",
        action="store_true",
        help="schedule the next batch only after the current one finished",
    )
    g.add_argument(
        "--stream-interval",
        type=int,
        default=d.stream_interval,
        help="tokens between streamed chunks",
    )
    g.add_argument(
        "--allow-auto-truncate",
        action="store_true",
        help="cut prompts longer than the context instead of refusing them",
    )

    g = _group(parser, "graphs and compilation")
    g.add_argument(
        "--disable-cuda-graph",
        action="store_true",
        help="run decode eagerly (no graphs), where the backend captures graphs",
    )
    g.add_argument(
        "--cuda-graph-max-bs",
        type=int,
        default=None,
        help="largest decode graph batch size (default: the backend's per-device value)",
    )
    g.add_argument(
        "--cuda-graph-bs",
        type=int,
        nargs="+",
        default=None,
        help="exact decode graph batch sizes (default: derived from the largest)",
    )
    g.add_argument(
        "--enable-torch-compile",
        action="store_true",
        help="torch.compile the model for the decode graphs of batch size up to "
        "--torch-compile-max-bs",
    )
    g.add_argument(
        "--torch-compile-max-bs",
        type=int,
        default=d.torch_compile_max_bs,
        help="largest batch size compiled with --enable-torch-compile",
    )

    g = _group(parser, "structured outputs, tools and reasoning")
    g.add_argument(
        "--grammar-backend",
        default=d.grammar_backend,
        choices=grammar_backends(),
        help="library that compiles JSON schemas, regexes and EBNF grammars",
    )
    g.add_argument(
        "--tool-call-parser",
        default=None,
        choices=tool_parsers(),
        help="format of tool calls in the output (default: detected from the chat template)",
    )
    g.add_argument(
        "--reasoning-parser",
        default=None,
        choices=reasoning_parsers(),
        help="split <think> reasoning into reasoning_content (default: off)",
    )
    g.add_argument(
        "--sampling-defaults",
        default=d.sampling_defaults,
        choices=SAMPLING_DEFAULTS,
        help="sampling parameters a request leaves unset: 'model' takes the model's generation "
        "config (temperature, top_p, top_k, min_p, repetition_penalty), 'openai' OpenAI's "
        "(temperature 1, top_p 1)",
    )


def from_cli(ns) -> ServerArgs:
    names = {f.name for f in dataclasses.fields(ServerArgs)} - {"extra"}
    args = ServerArgs(**{k: v for k, v in vars(ns).items() if k in names})
    args.validate()
    return args
