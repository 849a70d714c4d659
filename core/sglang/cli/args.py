"""The settings' command-line flags (`sglang serve`, `python -m sglang.launch_server` and the
bench scripts): SGLang's flag names and defaults where the meaning is the same."""

from __future__ import annotations

import argparse
import dataclasses

from sglang.constrained.registry import grammar_backends
from sglang.engine.settings import check_names, quantizations, reasoning_parsers, tool_parsers
from sglang.server_args import (
    DTYPES,
    KV_CACHE_DTYPES,
    LOAD_BALANCE_METHODS,
    LOAD_FORMATS,
    SAMPLING_DEFAULTS,
    SCHEDULE_POLICIES,
    ServerArgs,
)


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
        choices=quantizations(),
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

    g = _group(parser, "parallelism")
    g.add_argument(
        "--tp-size",
        "--tp",
        dest="tp_size",
        type=int,
        default=d.tp_size,
        help="tensor-parallel ranks: one process per rank, the model's heads and MLP split",
    )
    g.add_argument(
        "--ep-size",
        "--ep",
        "--expert-parallel-size",
        dest="ep_size",
        type=int,
        default=d.ep_size,
        help="expert-parallel ranks among the --tp-size ranks (must divide it): each holds "
        "1/ep of a MoE layer's experts",
    )
    g.add_argument(
        "--pp-size",
        "--pp",
        "--pipeline-parallel-size",
        dest="pp_size",
        type=int,
        default=d.pp_size,
        help="pipeline stages, each of --tp-size ranks holding a contiguous range of layers",
    )
    g.add_argument(
        "--dp-size",
        "--dp",
        dest="dp_size",
        type=int,
        default=d.dp_size,
        help="data-parallel replicas behind the one server, each of --tp-size ranks",
    )
    g.add_argument(
        "--load-balance-method",
        default=d.load_balance_method,
        choices=LOAD_BALANCE_METHODS,
        help="how requests are spread over the --dp-size replicas",
    )
    g.add_argument(
        "--dist-init-addr",
        default=None,
        help="host:port where the ranks rendezvous (default: a local file; needed with "
        "--nnodes > 1)",
    )
    g.add_argument("--nnodes", type=int, default=d.nnodes, help="nodes serving the ranks")
    g.add_argument("--node-rank", type=int, default=d.node_rank, help="this node's index")
    g.add_argument(
        "--base-gpu-id",
        type=int,
        default=d.base_gpu_id,
        help="the device index of this node's first rank",
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
        help="order of waiting requests: fcfs (arrival), lpm (longest cached prefix first), "
        "dfs-weight (prefix-tree groups), lof (longest output first), random, priority (fcfs "
        "within the requests' priorities)",
    )
    g.add_argument(
        "--enable-priority-scheduling",
        action="store_true",
        help="order waiting requests by their `priority` field first (higher first), then by "
        "the schedule policy; without it a request that sets priority is refused",
    )
    g.add_argument(
        "--schedule-low-priority-values-first",
        action="store_true",
        help="with priority scheduling, lower priority values go first",
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
    check_names(args)
    return args
