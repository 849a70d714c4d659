"""ModelRunner: builds the model on the selected platform, loads its weights, sizes the KV pool,
and runs one ForwardBatch to logits."""

from __future__ import annotations

import logging
import time

import torch

from sglang.backend.selection import Platform
from sglang.forward_batch import ForwardBatch
from sglang.layers.linear import prepare_linear_layers
from sglang.layers.ops_table import OpTable
from sglang.layers.quantization.gguf import (
    GGUF,
    QuantizationPlan,
    plan_quantization,
    repack_threads,
)
from sglang.layers.quantization.kv_scales import kv_cache_dtype, set_kv_scales
from sglang.layers.quantization.model import (
    apply_quantization,
    dummy_fill,
    log_layer_methods,
    mark_loaded,
    optional_parameters,
)
from sglang.layers.quantization.registry import (
    check_kv_cache_dtype,
    checkpoint_quantization,
    resolve_quantization,
)
from sglang.layers.weight_memory import weight_bytes
from sglang.mem.kv_cache import KVCache, tokens_that_fit
from sglang.mem.req_to_token import ReqToTokenPool
from sglang.mem.slot_allocator import KVSlotAllocator
from sglang.model_executor.graph_runner import DecodeGraphRunner, graph_batch_sizes
from sglang.model_executor.layout import describe as describe_layout
from sglang.model_executor.layout import rank_layout
from sglang.model_executor.model_registry import get_model_class
from sglang.model_executor.prefill_graph_runner import (
    PrefillGraphRunner,
    prefill_graph_max_tokens,
    prefill_token_sizes,
)
from sglang.model_loader import ModelConfig, ModelSource, dummy_weights, iterate_weights
from sglang.model_loader.gguf_blocks import CodesTensor
from sglang.parallel.pipeline import run_pipelined, stage_layers
from sglang.parallel.plan import PlanSender
from sglang.parallel.state import SINGLE, ParallelState
from sglang.server_args import ServerArgs

logger = logging.getLogger(__name__)

GIB = 1 << 30


MAX_RUNNING_DEFAULT = 256  # --max-running-requests when unset (fewer if the pool is small)


def kv_pool_size(
    per_token: int,
    limits: tuple[int, int],
    memory: tuple[int, int, float, int],
    cap_bytes: int | None = None,
) -> tuple[int, str]:
    """(KV slots, why): the fewest of what the limits can use (context length x running
    requests: more would never be filled), what memory allows (`mem_fraction_static` of the
    total, less the weights, and at most 90% of what is free now) and the backend's byte cap
    for host-shared memory (ServerDefaults.kv_cache_bytes)."""
    context_len, running = limits
    total, free, fraction, weights = memory
    budget = min(int(total * fraction) - weights, int(free * 0.9))
    options = [
        (context_len * max(running, 1), f"limits: context {context_len} x {running} running"),
        (
            tokens_that_fit(max(budget, 0), per_token),
            f"memory: {fraction} of {total / GIB:.1f} GiB less {weights / GIB:.2f} GiB of "
            f"weights, {free / GIB:.1f} GiB free",
        ),
    ]
    if cap_bytes:
        options.append(
            (tokens_that_fit(cap_bytes, per_token), f"backend cap {cap_bytes / GIB:.1f} GiB")
        )
    tokens = min(n for n, _ in options)
    why = "; ".join(f"{what} = {n}" for n, what in options)
    return tokens, f"the least of {why}"


def quantization_for(args: ServerArgs, model_config: ModelConfig, directory: str):
    """The QuantizationConfig serving this checkpoint (None: dense), from its config or
    --quantization (sglang.layers.quantization.registry)."""
    declared = checkpoint_quantization(directory, model_config.quantization_config)
    return resolve_quantization(declared, args.quantization)


def local_kv_geometry(model) -> tuple[int, int, int]:
    """(KV heads, K width, V width) this rank's attention layers store (tensor-parallel: its
    share of the KV heads)."""
    from sglang.layers.attention import Attention

    for module in model.modules():
        if isinstance(module, Attention):
            return module.num_kv_heads, module.head_dim, module.v_head_dim
    raise ValueError(f"{type(model).__name__} has no attention layer to size the KV cache by")


def _is_float_weight(name: str, tensor: torch.Tensor) -> bool:
    """A float weight or bias, cast to the serving dtype as it is loaded; GGUF codes
    (CodesTensor) are cast by the copy that reads them, if one does."""
    if isinstance(tensor, CodesTensor):
        return False
    return tensor.dtype in (torch.float32, torch.float16, torch.bfloat16) and name.endswith(
        (".weight", ".bias")
    )


class ModelRunner:
    def __init__(
        self,
        args: ServerArgs,
        platform: Platform,
        model_config: ModelConfig,
        source: ModelSource,
        parallel: ParallelState = SINGLE,
    ) -> None:
        """parallel: this rank's groups (sglang.parallel); the layers split their weights by
        it, and every rank of a replica sizes the same KV pool."""
        self.args, self.platform, self.model_config = args, platform, model_config
        self.parallel = parallel
        self.source = source
        self.runtime = platform.runtime
        self.device = self.runtime.device
        self.dtype = model_config.dtype
        if args.random_seed is not None:
            self.runtime.manual_seed(args.random_seed)
        overrides = {}
        if args.attention_backend:
            ops = ("attention.extend", "attention.decode")
            if args.kv_cache_dtype != "auto":  # the cache's writer must take its scales too
                ops += ("kv.store",)
            overrides = {op: args.attention_backend for op in ops}
        self.ops = OpTable(platform, overrides)
        self.ops.parallel = parallel
        cls = get_model_class(model_config.architectures)
        hf = model_config.raw
        start = time.perf_counter()
        self.quant_config = (
            None if source.is_gguf else quantization_for(args, model_config, source.directory)
        )
        # A GGUF file served on its codes: decoded and repacked on one thread (repack_threads).
        codes = source.is_gguf and args.quantization is None and args.load_format != "dummy"
        with torch.inference_mode(), repack_threads(codes):
            self.model = cls(hf, self.ops, self.dtype, self.device)
            apply_quantization(self.model, self.quant_config)
            param_types, blocks = self._load_weights()
            if self.quant_config is not None:
                plan = QuantizationPlan(self.quant_config.name, "the checkpoint")
                prepare_linear_layers(self.model)
            else:
                plan = plan_quantization(
                    args.quantization,
                    self.model,
                    param_types,
                    blocks,
                    self.dtype,
                    self.ops.features,
                )
                del blocks
                method = None if plan.method == GGUF else plan.method
                prepare_linear_layers(self.model, method, plan.layer_args)
        self.quantization = plan.method
        self.layer_methods = log_layer_methods(self.model, self.quant_config)
        self.model.eval()
        self.weight_bytes = weight_bytes(self.model)
        self.layout = rank_layout(self.model, parallel, model_config.raw)
        if parallel.world.size > 1:
            logger.info("parallel layout: %s", describe_layout(self.layout))
        logger.info(
            "model %s loaded: %s, %.2f GiB of weights in %s%s on %s (%.1f s)",
            model_config.architectures[0],
            args.load_format,
            self.weight_bytes / GIB,
            str(self.dtype).removeprefix("torch."),
            f" ({plan.method} linear layers: {plan.reason})" if plan.method else "",
            self.runtime.device_name(),
            time.perf_counter() - start,
        )
        max_pos = model_config.max_position_embeddings
        if args.context_length is not None and args.context_length > max_pos:
            raise ValueError(
                f"--context-length {args.context_length} exceeds the model's "
                f"max_position_embeddings {max_pos}"
            )
        self.context_len = args.context_length or max_pos
        self._init_memory_pool()
        # Rank 0 of a multi-rank replica broadcasts each forward's plan (sglang.parallel.plan).
        self.plan: PlanSender | None = None
        if parallel.world.size > 1 and parallel.is_leader:
            self.plan = PlanSender(parallel.world.comm, self.device)
        self.graph_runner: DecodeGraphRunner | None = None
        self.prefill_graph_runner: PrefillGraphRunner | None = None
        graphs = not args.disable_cuda_graph and parallel.pp.size == 1  # PP: transfers inside
        if parallel.pp.size > 1 and not args.disable_cuda_graph:
            logger.info("pipeline parallel: forwards run without graphs")
        if self.runtime.supports_graph_capture and graphs:
            self.init_graph_runner()
            self.init_prefill_graph_runner()
        elif args.enable_torch_compile:
            logger.warning(
                "--enable-torch-compile applies to the decode graphs, and %s: the model runs "
                "uncompiled",
                "--disable-cuda-graph is set"
                if args.disable_cuda_graph
                else "--pp-size > 1 runs without graphs"
                if parallel.pp.size > 1
                else f"the {self.runtime.device_name()} runtime captures none",
            )

    # --- weights ---------------------------------------------------------------------------
    def _load_weights(self) -> tuple[dict[str, str] | None, dict | None]:
        """Fill the parameters. Returns, for a GGUF file, ({parameter name: the GGML type of
        the file's tensor(s) that filled it}, {parameter name: {shard: the file's codes}})
        (see layers/quantization/gguf.py), else (None, None)."""
        params = dict(self.model.named_parameters())
        if self.args.load_format == "dummy":
            shapes = {n: (tuple(p.shape), p.dtype) for n, p in params.items()}
            # On the device: drawing 8B values on the host takes minutes.
            weights = dummy_weights(shapes, seed=self.args.random_seed or 0, device=self.device)
            for name, tensor in weights:
                params[name].data.copy_(tensor)
            mark_loaded(self.model)
            dummy_fill(self.model, seed=self.args.random_seed or 0)
            return None, None
        gguf = self.source.is_gguf
        types: dict[str, str] | None = {} if gguf else None
        blocks: dict | None = {} if gguf and self.args.quantization is None else None
        stream = iterate_weights(
            self.source,
            self.args.load_format,
            hf_config=self.model_config.raw,
            types=types,
            blocks=blocks,
        )
        # Float weights and biases take the serving dtype; quantized data and scales stay as the
        # checkpoint has them (their parameters declare their own dtypes).
        cast = ((n, t.to(self.dtype) if _is_float_weight(n, t) else t) for n, t in stream)
        if types is None:
            loaded = self.model.load_weights(cast)
            param_types = param_blocks = None
        else:  # one tensor at a time, to learn which parameters (and rows) each one fills
            modules = dict(self.model.named_modules())
            loaded, param_types, param_blocks = set(), {}, {}
            for name, tensor in cast:
                for param in self.model.load_weights([(name, tensor)]):
                    loaded.add(param)
                    param_types[param] = types[name]
                    if blocks is not None and name in blocks:
                        module = modules.get(param.rpartition(".")[0])
                        shard = getattr(module, "last_shard", None)
                        param_blocks.setdefault(param, {})[shard] = blocks.pop(name)
        optional = tuple(getattr(self.model, "optional_weights", ()))  # prefixes (V3's MTP)
        missing = sorted(
            n
            for n in set(params) - loaded - optional_parameters(self.model)
            if not n.startswith(optional)
        )
        if missing:
            raise ValueError(f"checkpoint lacks weights for: {', '.join(missing[:8])}")
        if optional:
            mark_loaded(self.model, optional)
        return param_types, param_blocks

    # --- memory ----------------------------------------------------------------------------
    def _init_memory_pool(self) -> None:
        cfg, args = self.model_config, self.args
        attention = self.platform.backend
        if args.attention_backend:
            attention = self.platform.found.backends[args.attention_backend]
        check_kv_cache_dtype(
            args.kv_cache_dtype, attention.name, attention.capabilities.features(), {}
        )
        kv_dtype = kv_cache_dtype(args.kv_cache_dtype, self.dtype)
        # (kv heads, K width, V width) per token and layer; a model may store another layout
        # (MLA: one latent row, no V).
        geometry = getattr(self.model, "kv_cache_geometry", None)
        heads, k_dim, v_dim = (
            geometry() if geometry else (cfg.num_key_value_heads, cfg.head_dim, cfg.head_dim)
        )
        if self.parallel.tp.size > 1 and geometry is None:
            heads, k_dim, v_dim = local_kv_geometry(self.model)
        pp = self.parallel.pp  # a pipeline stage caches its own layers
        layers = stage_layers(cfg.num_hidden_layers, pp.rank, pp.size)
        per_token = KVCache.bytes_per_token(len(layers), heads, k_dim, v_dim, kv_dtype)
        if args.max_total_tokens is not None:
            tokens = args.max_total_tokens
            why = "--max-total-tokens"
        else:
            free, total = self.runtime.memory_info()
            tokens, why = kv_pool_size(
                per_token,
                limits=(self.context_len, args.max_running_requests or MAX_RUNNING_DEFAULT),
                memory=(total, free, args.mem_fraction_static, self.weight_bytes),
                cap_bytes=args.extra.get("kv_cache_bytes"),
            )
        if self.parallel.world.size > 1:  # every rank's pool holds the same slots
            tokens = self._agree_on_min(tokens)
        if tokens < 16:
            raise RuntimeError(f"the KV pool fits only {tokens} tokens ({why}); lower the load")
        # The settings' value, or derived from the pool (the settings record is not changed).
        self.max_running_requests = args.max_running_requests or max(
            1, min(MAX_RUNNING_DEFAULT, tokens // 2)
        )
        self.kv_cache = KVCache(
            len(layers), tokens, heads, k_dim, v_dim, kv_dtype, self.device, layers.start
        )
        scales = set_kv_scales(self.model, kv_dtype != self.dtype)
        self.allocator = KVSlotAllocator(tokens, self.device)
        self.req_to_token = ReqToTokenPool(
            self.max_running_requests + 1, self.context_len + 1, self.device
        )
        logger.info(
            "KV pool: %d tokens x %d B/token = %.2f GiB of %s%s (%s); max_running_requests=%d, "
            "context_len=%d",
            tokens,
            per_token,
            tokens * per_token / GIB,
            str(kv_dtype).removeprefix("torch."),
            f", {scales}" if scales else "",
            why,
            self.max_running_requests,
            self.context_len,
        )

    def _agree_on_min(self, value: int) -> int:
        t = torch.tensor([value], dtype=torch.int64, device=self.device)
        return int(self.parallel.world.comm.all_reduce(t, op="min").item())

    # --- graphs ----------------------------------------------------------------------------
    def init_graph_runner(self, batch_sizes: list[int] | None = None) -> bool:
        """Capture decode graphs (on a runtime without graphs: the same path, run eagerly).
        Returns whether decode now replays through the graph runner."""
        sizes = batch_sizes or self.args.cuda_graph_bs
        sizes = sizes or graph_batch_sizes(self.args.cuda_graph_max_bs or 32)
        runner = DecodeGraphRunner(self, sizes)
        self.graph_runner = runner if runner.capture() else None
        return self.graph_runner is not None

    def init_prefill_graph_runner(self, token_sizes: list[int] | None = None) -> bool:
        """Capture graphs of short extend forwards (prefill_graph_runner.py); none when the
        token limit is 0. Returns whether short prefills now replay from graphs."""
        max_tokens = prefill_graph_max_tokens()
        if token_sizes is None and max_tokens <= 0:
            return False
        runner = PrefillGraphRunner(self, token_sizes or prefill_token_sizes(max_tokens))
        self.prefill_graph_runner = runner if runner.capture() else None
        return self.prefill_graph_runner is not None

    # --- forward ---------------------------------------------------------------------------
    @torch.inference_mode()
    def forward(self, batch: ForwardBatch) -> torch.Tensor:
        """float32 logits [len(batch.logits_indices), vocab] (from a graph's output buffer
        when one ran: read it before the next forward)."""
        if self.plan is not None:
            self.plan.send(batch)
        if self.graph_runner is not None and self.graph_runner.can_run(batch):
            return self.graph_runner.replay(batch)
        prefill = self.prefill_graph_runner
        if prefill is not None and prefill.can_run(batch):
            return prefill.replay(batch)
        if self.parallel.pp.size == 1:
            return self.model(batch)
        # Micro-batches through the stages; rank 0 gets the last stage's logits.
        return run_pipelined(self.model, batch, self.parallel, self.model_config.vocab_size)

    def close(self) -> None:
        """Release the other ranks of the replica (they leave `follow`)."""
        if self.plan is not None:
            self.plan.stop()
            self.plan = None
