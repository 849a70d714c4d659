"""Mixture-of-experts layers over `moe.route` and `moe.experts`.

`Routing` is what a config says about choosing experts (checked at construction: a config the
layer does not know fails at startup naming its field). `FusedMoE` holds every routed expert's
weights stacked (w13 [E, 2I, D]: gate rows then up rows; w2 [E, D, I]) and runs router logits
-> (weights, ids) -> the weighted sum of the chosen experts' gated MLPs. `SparseMoE` is the
whole block a decoder layer calls: the router's linear layer, the routed experts, and optional
shared experts (always on, optionally scaled by a sigmoid gate: Qwen2-MoE).

Parallel (SGLang's layout, sglang.parallel.state): a FusedMoE holds the experts of its EP rank
(`expert_start` .. + `num_local`), each cut to its `moe_tp` slice of the intermediate features.
Every TP rank holds every token (attention's all-reduce replicates them), routes them over all
experts, runs the slots routed to its experts (the others' ids become -1, which moe.experts
skips) and the partial outputs are summed by one all-reduce over the TP group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from sglang.layers.base import Layer
from sglang.layers.linear import Linear
from sglang.layers.moe_quantized import QuantizedExperts, copy_checked
from sglang.layers.norm import PendingNorm
from sglang.layers.ops_table import OpTable
from sglang.layers.weight_memory import tensors_in
from sglang.ops.moe import ACTIVATIONS, SCORING_FUNCS
from sglang.parallel.sharding import local_size, split_part
from sglang.parallel.state import SINGLE


class MoEConfigError(ValueError):
    """A mixture-of-experts config field the layer cannot serve (the message names it)."""


@dataclass(frozen=True)
class Routing:
    """How a token picks its experts (the semantics are moe.route's).

    fields: for error messages, the config's own name for each attribute (Mixtral calls the
    expert count `num_local_experts`, DeepSeek `n_routed_experts`)."""

    num_experts: int
    top_k: int
    scoring_func: str = "softmax"
    renormalize: bool = True
    num_expert_group: int | None = None
    topk_group: int | None = None
    routed_scaling_factor: float = 1.0
    correction_bias: bool = False
    fields: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        def bad(attr: str, why: str) -> MoEConfigError:
            name = self.fields.get(attr, attr)
            return MoEConfigError(
                f"mixture-of-experts config: {name} = {getattr(self, attr)!r}: {why}"
            )

        if not isinstance(self.num_experts, int) or self.num_experts <= 0:
            raise bad("num_experts", "the expert count must be a positive integer")
        if not isinstance(self.top_k, int) or not 0 < self.top_k <= self.num_experts:
            raise bad("top_k", f"must be an integer in 1..{self.num_experts} (the expert count)")
        if self.scoring_func not in SCORING_FUNCS:
            raise bad("scoring_func", f"unknown routing scoring function; known: {SCORING_FUNCS}")
        groups = self.num_expert_group
        if groups is not None and groups > 1:
            if self.num_experts % groups:
                raise bad("num_expert_group", f"does not divide the {self.num_experts} experts")
            if self.topk_group is None or not 0 < self.topk_group <= groups:
                raise bad("topk_group", f"must be in 1..{groups} (the group count)")
            per_group = self.num_experts // groups
            if self.correction_bias and per_group < 2:
                raise bad("num_expert_group", "biased group scores need 2 experts per group")
            if self.top_k > self.topk_group * per_group:
                raise bad("top_k", f"exceeds the {self.topk_group * per_group} eligible experts")


class FusedMoE(QuantizedExperts, Layer):
    """Routed experts. forward(x [T, D], router_logits [T, E]) -> [T, D] in x.dtype. The
    quantized formats a layer can keep its experts in: QuantizedExperts (moe_quantized.py)."""

    def __init__(
        self,
        routing: Routing,
        hidden_size: int,
        intermediate_size: int,
        ops: OpTable,
        activation: str = "silu",
        bias: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise MoEConfigError(
                f"mixture-of-experts config: hidden_act = {activation!r}: the experts support "
                f"{ACTIVATIONS}"
            )
        self.ops, self.routing, self.activation = ops, routing, activation
        parallel = getattr(ops, "parallel", None) or SINGLE
        self.ep, self.moe_tp = parallel.ep, parallel.moe_tp
        self.reduce = parallel.tp.comm if parallel.tp.size > 1 else None
        self.full_inter = intermediate_size
        self.inter = local_size(intermediate_size, self.moe_tp.size, "expert intermediate size")
        self.num_local = local_size(routing.num_experts, self.ep.size, "routed experts")
        self.expert_start = self.ep.rank * self.num_local
        e, intermediate_size = self.num_local, self.inter
        kw = dict(dtype=dtype, device=device)
        self.w13_weight = nn.Parameter(
            torch.empty(e, 2 * intermediate_size, hidden_size, **kw), requires_grad=False
        )
        self.w2_weight = nn.Parameter(
            torch.empty(e, hidden_size, intermediate_size, **kw), requires_grad=False
        )
        # gpt-oss's expert biases: w13_bias [E, 2I] (gate then up), w2_bias [E, D].
        self.w13_bias = self.w2_bias = None
        if bias:
            self.w13_bias = nn.Parameter(
                torch.zeros(e, 2 * intermediate_size, **kw), requires_grad=False
            )
            self.w2_bias = nn.Parameter(torch.zeros(e, hidden_size, **kw), requires_grad=False)
        # Beyond silu / gelu without biases, a kernel must declare what it takes; else the
        # reference kernel serves (OpTable.kernel_needing). None: the table's kernel.
        self._needs = tuple(
            f"moe:{f}" for f, on in (("swigluoai", activation == "swigluoai"), ("bias", bias)) if on
        )
        self._experts = ops.kernel_needing("moe.experts", self._needs) if self._needs else None
        self._bias_args = {"w13_bias": self.w13_bias, "w2_bias": self.w2_bias} if bias else {}
        self._init_quantized()  # float experts until keep_fp8_blocks / keep_mxfp4 / keep_int4
        self._prepared: dict | None = None  # the kernel's weight arguments (prepare_weights)
        # DeepSeek-V3's load-balancing bias: float32 as the checkpoint keeps it (every expert's:
        # routing runs over all of them on every rank).
        self.correction_bias = (
            nn.Parameter(
                torch.zeros(routing.num_experts, dtype=torch.float32, device=device),
                requires_grad=False,
            )
            if routing.correction_bias
            else None
        )
        r = routing
        self._route_args = dict(
            top_k=r.top_k,
            scoring_func=r.scoring_func,
            renormalize=r.renormalize,
            num_expert_group=r.num_expert_group,
            topk_group=r.topk_group,
            routed_scaling_factor=r.routed_scaling_factor,
        )

    def holds(self, expert: int) -> bool:
        """Whether this rank holds (its slice of) routed expert `expert` (a global id)."""
        return 0 <= expert - self.expert_start < self.num_local

    def expert_shape(self, shard: str) -> tuple[int, int]:
        """The checkpoint's shape of one expert's matrix (the whole of it)."""
        hidden = self.w2_weight.shape[1]
        return (hidden, self.full_inter) if shard == "down" else (self.full_inter, hidden)

    def load_expert(self, expert: int, shard: str, tensor: torch.Tensor) -> str:
        """Copy one expert's checkpoint matrix: shard "gate" / "up" ([I, D]) or "down"
        ([D, I]); an expert another EP rank holds is skipped, and of the others this rank
        keeps its moe_tp slice of I. Returns the parameter's local name."""
        if not 0 <= expert < self.routing.num_experts:
            raise ValueError(f"expert {expert} out of range 0..{self.routing.num_experts - 1}")
        if shard not in ("gate", "up", "down"):
            raise ValueError(f"unknown expert shard {shard!r}")
        name = "w2_weight" if shard == "down" else "w13_weight"
        if not self.holds(expert):
            return name
        if self.moe_tp.size > 1 and tuple(tensor.shape) == self.expert_shape(shard):
            dim = 1 if shard == "down" else 0
            what = f"expert {expert} {shard}"
            tensor = split_part(tensor, dim, self.moe_tp.rank, self.moe_tp.size, what)
        expert -= self.expert_start
        if shard == "down":
            target = self.w2_weight.data[expert]
        else:
            rows = slice(0, self.inter) if shard == "gate" else slice(self.inter, 2 * self.inter)
            target = self.w13_weight.data[expert, rows]
        copy_checked(target, tensor, f"expert {expert} {shard}")
        return name

    def load_stacked(self, name: str, tensor: torch.Tensor, what: str = "") -> None:
        """Copy checkpoint tensor `what` holding every expert, already in this layer's layout:
        w13_weight [E, 2I, D] (gate rows, then up), w2_weight [E, D, I], w13_bias [E, 2I],
        w2_bias [E, D]. This rank keeps its experts and its moe_tp slice of I (of gate and of
        up); w2_bias is added after the down product, before the all-reduce, so only the first
        slice of each expert carries it."""
        inter_dim = {"w13_weight": 1, "w2_weight": 2, "w13_bias": 1, "w2_bias": None}
        inter_dim.update(w13_scale=1, w2_scale=2)  # MXFP4 experts (keep_mxfp4)
        target = getattr(self, name, None) if name in inter_dim else None
        if target is None:
            raise KeyError(f"{what}: the experts hold no {name!r}")
        if tensor.dim() == 0 or tensor.shape[0] != self.routing.num_experts:
            raise ValueError(
                f"{what}: checkpoint shape {tuple(tensor.shape)}, the config has "
                f"{self.routing.num_experts} experts"
            )
        tensor = tensor.narrow(0, self.expert_start, self.num_local)
        dim, tp = inter_dim[name], self.moe_tp
        if tp.size > 1 and dim is not None:
            parts = tensor.chunk(2, dim=dim) if name.startswith("w13") else (tensor,)
            tensor = torch.cat([split_part(t, dim, tp.rank, tp.size, what) for t in parts], dim)
        elif dim is None and tp.rank > 0:
            tensor = torch.zeros_like(tensor)
        if tuple(target.shape) != tuple(tensor.shape):
            raise ValueError(
                f"{what}: checkpoint shape {tuple(tensor.shape)} != {tuple(target.shape)} "
                "(this rank's experts and slice)"
            )
        target.data.copy_(tensor)

    def prepare_weights(self) -> None:
        """Once, after loading (prepare_linear_layers calls it): hand the experts' weights to
        the serving kernel's `prepare`, which may put them in its own layout (xeon: its native
        int4 form), and drop the parameters the kernel no longer reads."""
        if self._prepared is not None:
            return
        self._down_orders.clear()  # act-order loading's bookkeeping, done with
        self._int4_loaded.clear()
        features = (*self._needs, *self.kept_features)
        args = {"w13": self.w13_weight, "w2": self.w2_weight, **self._quant_args()}
        fn, prepared = self.ops.prepared_needing("moe.experts", features, args)
        self._experts, self._prepared = fn, prepared
        held = {id(v) for v in prepared.values()}
        for name in (
            "w13_weight",
            "w2_weight",
            "w13_scale",
            "w2_scale",
            "w13_zeros",
            "w2_zeros",
            "w13_perm",
        ):
            if getattr(self, name) is not None and id(getattr(self, name)) not in held:
                setattr(self, name, None)

    def prepared_tensors(self) -> list[torch.Tensor]:
        """The tensors of the kernel's own layout (for memory accounting)."""
        return list(tensors_in(self._prepared or {}))

    def forward(self, x: torch.Tensor, router_logits: torch.Tensor) -> torch.Tensor:
        weights, ids = self.ops.moe_route(
            router_logits=router_logits, correction_bias=self.correction_bias, **self._route_args
        )
        if self.ep.size > 1:  # global ids -> this rank's; another rank's expert -> -1
            local = ids - self.expert_start
            ids = torch.where((local >= 0) & (local < self.num_local), local, -1).to(ids.dtype)
        weights_args = self._prepared
        if weights_args is None:  # not prepared (a layer built alone, in tests)
            weights_args = {"w13": self.w13_weight, "w2": self.w2_weight, **self._quant_args()}
        out = (self._experts or self.ops.moe_experts)(
            x=x,
            topk_weights=weights,
            topk_ids=ids,
            activation=self.activation,
            **self._bias_args,
            **weights_args,
        )
        return self.reduce.all_reduce(out) if self.reduce is not None else out


class SparseMoE(Layer):
    """The MoE block: the router (a linear layer, `gate`), the routed `experts`, and optional
    shared experts (any layer of x, kept under `shared_name`, the checkpoint's name) added to
    their sum, scaled per token by sigmoid(shared_expert_gate(x)) when `shared_gate`."""

    def __init__(
        self,
        routing: Routing,
        hidden_size: int,
        intermediate_size: int,
        ops: OpTable,
        activation: str = "silu",
        expert_bias: bool = False,
        shared: nn.Module | None = None,
        shared_name: str = "shared_experts",
        shared_gate: bool = False,
        router_bias: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        kw = dict(dtype=dtype, device=device)
        self.gate = Linear(hidden_size, routing.num_experts, ops, bias=router_bias, **kw)
        self.experts = FusedMoE(
            routing, hidden_size, intermediate_size, ops, activation, expert_bias, **kw
        )
        self.shared_name = shared_name
        if shared is not None:
            setattr(self, shared_name, shared)
        self.shared_expert_gate = Linear(hidden_size, 1, ops, **kw) if shared_gate else None
        # Routers stay in the float dtype whatever the checkpoint's format (as in SGLang).
        for router in (self.gate, self.shared_expert_gate):
            if router is not None:
                router.quantizable = False

    def forward(self, x: torch.Tensor | PendingNorm) -> torch.Tensor:
        if isinstance(x, PendingNorm):  # the router's GEMM runs the norm, and keeps its row
            x.keep_normed = True
            logits = self.gate(x)
            x = x.normed()
        else:
            logits = self.gate(x)
        out = self.experts(x, logits)
        shared = self._modules.get(self.shared_name)
        if shared is not None:
            shared = shared(x)
            if self.shared_expert_gate is not None:
                shared = shared * torch.sigmoid(self.shared_expert_gate(x))
            out = out + shared
        return out
