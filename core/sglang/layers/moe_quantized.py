"""Routed experts kept in their checkpoint's quantized format (FusedMoE's half that knows the
formats): FP8 blocks (DeepSeek-V3, Qwen3 FP8), MXFP4 (gpt-oss) and int4 groups (W4A16: AWQ,
GPTQ (act-order too, where the backend declares moe:act_order), compressed-tensors
pack-quantized, `--quantization int4`).

`*_servable` says why a layer cannot keep a format (None: it can): the backend serving
moe.experts must declare the format's capability, and a moe_tp slice of the intermediate
features must be whole blocks / groups. `keep_*` swaps the float expert weights for the
format's codes and scales before loading; moe.experts then takes them as they are (layouts:
sglang.ops.moe.experts, sglang.ops.quant.experts).
"""

from __future__ import annotations

import torch
from torch import nn

from sglang.ops.quant.experts import expert_block_rows
from sglang.ops.quant.fp8 import FP8
from sglang.parallel.sharding import split_part


class QuantizedExperts:
    """Mixed into FusedMoE (which sets w13_weight, w2_weight, ops, moe_tp, inter, full_inter,
    _needs and the expert range before any of this is called)."""

    def _init_quantized(self) -> None:
        # The format ("fp8 block [bn, bk]", "mxfp4", "int4 group G") and the scales (and int4's
        # zeros) moe.experts takes beside the codes.
        self.kept: str | None = None
        self.w13_scale = self.w2_scale = None
        self.w13_zeros = self.w2_zeros = None
        self.block_size: tuple[int, int] | None = None
        self.int4_group: int | None = None
        self.w13_perm: torch.Tensor | None = None  # act-order int4: each expert's input order
        self._down_orders: dict[int, torch.Tensor] = {}  # act-order: local expert -> I's order
        self._int4_loaded: dict[int, set[str]] = {}  # act-order: local expert -> shards stored
        self.scale_name = ""
        self.kept_features: tuple[str, ...] = ()  # the capability keys the kept format needs

    # --- which format a layer can keep ---------------------------------------------------
    def fp8_blocks_servable(self, block: tuple[int, int]) -> str | None:
        """FP8 e4m3 blocks of `block` (moe:fp8_block)."""
        return self._servable("moe:fp8_block", block, f"{tuple(block)} blocks")

    def mxfp4_servable(self) -> str | None:
        """MXFP4 (moe:mxfp4): K of both matrices (D and a moe_tp slice of I) whole groups of 32."""
        if self.w2_weight.shape[1] % 32:
            return f"the hidden size {self.w2_weight.shape[1]} is not whole MXFP4 groups of 32"
        return self._servable("moe:mxfp4", (32,), "MXFP4 groups of 32")

    def int4_servable(self, group: int, act_order: bool = False) -> str | None:
        """Int4 codes in groups of `group` along K (-1: one group a row; moe:int4): D and this
        rank's slice of I whole groups, an even number of features (two codes a byte).
        act_order (GPTQ desc_act): also moe:act_order, and I not split over ranks (its order
        is the whole intermediate's)."""
        hidden = self.w2_weight.shape[1]
        if (group == -1 or act_order) and self.moe_tp.size > 1:
            what = "act-order int4 experts" if act_order else "one int4 group a row of w2"
            return f"{what} cannot be split over tensor-parallel ranks"
        if act_order and self.w13_bias is not None:
            return "act-order int4 experts with biases are not kept (their rows are reordered)"
        if group == -1:
            group = 2  # the codes' bytes only
        if hidden % group or hidden % 2:
            return f"the hidden size {hidden} is not whole int4 groups of {group}"
        if self.full_inter % group or self.full_inter % 2:
            return f"the intermediate size {self.full_inter} is not whole int4 groups of {group}"
        features = ("moe:int4", "moe:act_order") if act_order else "moe:int4"
        return self._servable(features, (group, 2), f"int4 groups of {group}")

    def _servable(self, feature: str | tuple, sizes: tuple[int, ...], what: str) -> str | None:
        needs = (*self._needs, *((feature,) if isinstance(feature, str) else feature))
        if not self.ops.declares("moe.experts", needs):
            return f"the backend serving moe.experts lacks {', '.join(needs)}"
        if self.moe_tp.size > 1 and any(self.inter % size for size in sizes):
            return (
                f"a tensor-parallel slice of {self.inter} intermediate features is not whole {what}"
            )
        return None

    # --- keeping a format ------------------------------------------------------------------
    def keep_mxfp4(self) -> None:
        """Hold the routed experts as MXFP4 (moe.experts with moe:mxfp4), gpt-oss's format:
        w13_weight uint8 [E, 2I, D/2] and w2_weight [E, D, I/2] (two e2m1 codes a byte, low
        nibble first) with e8m0 scales w13_scale [E, 2I, D/32] and w2_scale [E, D, I/32], filled
        by load_stacked. Call before loading."""
        e, two_inter, hidden = self.w13_weight.shape
        inter, device, u8 = two_inter // 2, self.w13_weight.device, torch.uint8
        self.w13_weight = _frozen((e, two_inter, hidden // 2), u8, device)
        self.w13_scale = _frozen((e, two_inter, hidden // 32), u8, device)
        self.w2_weight = _frozen((e, hidden, inter // 2), u8, device)
        self.w2_scale = _frozen((e, hidden, inter // 32), u8, device)
        self.kept = "mxfp4"
        self.kept_features = ("moe:mxfp4",)
        self._experts = self.ops.kernel_needing("moe.experts", (*self._needs, "moe:mxfp4"))

    def keep_fp8_blocks(self, block: tuple[int, int], scale_name: str) -> None:
        """Hold the routed experts as the checkpoint's FP8 blocks (moe.experts with
        moe:fp8_block) instead of float weights: w13_weight / w2_weight become float8_e4m3fn
        and w13_scale [E, 2 * ceil(I/bn), ceil(D/bk)] / w2_scale [E, ceil(D/bn), ceil(I/bk)]
        hold the block scales (`scale_name` is the checkpoint's name for them:
        weight_scale_inv, or weight_scale in compressed-tensors). Call before loading."""
        bn, bk = block
        e, two_inter, hidden = self.w13_weight.shape
        inter, device, f32 = two_inter // 2, self.w13_weight.device, torch.float32
        self.w13_weight = _frozen((e, two_inter, hidden), FP8, device)
        self.w2_weight = _frozen((e, hidden, inter), FP8, device)
        rows13 = expert_block_rows(two_inter, bn, 2)
        self.w13_scale = _frozen((e, rows13, -(-hidden // bk)), f32, device)
        self.w2_scale = _frozen((e, -(-hidden // bn), -(-inter // bk)), f32, device)
        self.block_size, self.scale_name = (bn, bk), scale_name
        self.kept = f"fp8 block {[bn, bk]}"
        self.kept_features = ("moe:fp8_block",)
        self._experts = self.ops.kernel_needing("moe.experts", (*self._needs, "moe:fp8_block"))

    def keep_int4(self, group: int, scale_dtype: torch.dtype, act_order: bool = False) -> None:
        """Hold the routed experts as int4 codes (moe.experts with moe:int4): w13_weight uint8
        [E, 2I, D/2] and w2_weight [E, D, I/2] (codes 0..15, two a byte, low nibble first) with
        scales and float zero points w13_scale / w13_zeros [E, 2I, D/G] and w2_scale / w2_zeros
        [E, D, I/G] in `scale_dtype` (G = `group`, or the whole row for -1), filled by
        load_expert_int4 from each projection's checkpoint tensors. Call before loading.

        act_order (GPTQ desc_act, moe:act_order): each projection's columns come sorted by
        group (its own input order); gate and up share x, so their order is one w13_perm row
        per expert, which moe.experts applies to x; down's order over I is applied to the rows
        of gate and up instead (their outputs then come in that order: free at run time)."""
        e, two_inter, hidden = self.w13_weight.shape
        inter, device, u8 = two_inter // 2, self.w13_weight.device, torch.uint8
        g13, g2 = (hidden, inter) if group == -1 else (group, group)
        self.w13_weight = _frozen((e, two_inter, hidden // 2), u8, device)
        self.w2_weight = _frozen((e, hidden, inter // 2), u8, device)
        self.w13_scale = _frozen((e, two_inter, hidden // g13), scale_dtype, device)
        self.w13_zeros = _frozen((e, two_inter, hidden // g13), scale_dtype, device)
        self.w2_scale = _frozen((e, hidden, inter // g2), scale_dtype, device)
        self.w2_zeros = _frozen((e, hidden, inter // g2), scale_dtype, device)
        self.int4_group = group
        self.kept = f"int4 group {group}" if group != -1 else "int4 per channel"
        self.kept_features = ("moe:int4",)
        if act_order:
            order = torch.arange(hidden, dtype=torch.int32, device=device)
            self.w13_perm = order.repeat(e, 1)
            self.kept += " act-order"
            self.kept_features += ("moe:act_order",)
        self._experts = self.ops.kernel_needing("moe.experts", (*self._needs, *self.kept_features))

    # --- loading ---------------------------------------------------------------------------
    def load_expert_scale(self, expert: int, shard: str, tensor: torch.Tensor) -> str:
        """Copy one expert's block scales (FP8 experts, keep_fp8_blocks): shard "gate" / "up"
        ([ceil(I/bn), ceil(D/bk)]) or "down" ([ceil(D/bn), ceil(I/bk)]); this rank keeps its
        moe_tp slice of the I blocks. Returns the parameter's local name."""
        if self.w13_scale is None:
            raise ValueError(f"expert {expert} {shard}: block scales, but the experts are float")
        name = "w2_scale" if shard == "down" else "w13_scale"
        if not self.holds(expert):
            return name
        bn, bk = self.block_size
        dim = 1 if shard == "down" else 0
        whole = -(-self.full_inter // (bk if shard == "down" else bn))
        if self.moe_tp.size > 1 and tensor.dim() == 2 and tensor.shape[dim] == whole:
            what = f"expert {expert} {shard} scales"
            tensor = split_part(tensor, dim, self.moe_tp.rank, self.moe_tp.size, what)
        local = expert - self.expert_start
        if shard == "down":
            target = self.w2_scale.data[local]
        else:
            rows = self.w13_scale.shape[1] // 2
            target = self.w13_scale.data[
                local, slice(0, rows) if shard == "gate" else slice(rows, None)
            ]
        copy_checked(target, tensor, f"expert {expert} {shard} block scales {self.block_size}")
        return name

    def load_expert_int4(
        self,
        expert: int,
        shard: str,
        codes: torch.Tensor,
        scales: torch.Tensor,
        zeros: torch.Tensor,
        order: torch.Tensor | None = None,
    ) -> str:
        """Copy one expert's int4 projection (keep_int4), whole as the checkpoint has it:
        codes uint8 [N, K/2], scales and zeros [N, K/G] (sglang.ops.quant.experts
        .int4_expert_from_gemm); this rank keeps its moe_tp slice of I (rows of gate / up,
        columns of down). `order`: act-order's input order of the codes' columns (None: as
        they are). Returns the local name of the weight parameter."""
        name = "w2_weight" if shard == "down" else "w13_weight"
        if not self.holds(expert):
            return name
        local = expert - self.expert_start
        if order is not None and self.w13_perm is None:
            raise ValueError(
                f"expert {expert} {shard}: act-order int4 weights, but the layer keeps "
                "int4 groups in order"
            )
        if self.w13_perm is not None:
            codes, scales, zeros = self._act_order(
                expert, local, shard, order, codes, scales, zeros
            )
        dim = 1 if shard == "down" else 0
        parts = []
        for what, t in (("codes", codes), ("scales", scales), ("zeros", zeros)):
            if self.moe_tp.size > 1:
                label = f"expert {expert} {shard} int4 {what}"
                t = split_part(t, dim, self.moe_tp.rank, self.moe_tp.size, label)
            parts.append(t)
        targets = (
            (self.w2_weight, self.w2_scale, self.w2_zeros)
            if shard == "down"
            else (self.w13_weight, self.w13_scale, self.w13_zeros)
        )
        for what, target, t in zip(("codes", "scales", "zeros"), targets, parts):
            view = target.data[local]
            if shard != "down":
                view = view[slice(0, self.inter) if shard == "gate" else slice(self.inter, None)]
            copy_checked(view, t.to(view.dtype), f"expert {expert} {shard} int4 {what}")
        return name

    def dummy_fill(self, gen: torch.Generator) -> None:
        """After `--load-format dummy`: act-order experts get a random input order each (what
        a checkpoint gives them), so a benchmark pays the gathers a real one does."""
        if self.w13_perm is not None:
            hidden = self.w13_perm.shape[1]
            for local in range(self.w13_perm.shape[0]):
                self.w13_perm[local] = torch.randperm(hidden, generator=gen).to(self.w13_perm)

    def _act_order(self, expert, local, shard, order, codes, scales, zeros):
        """Act-order bookkeeping of load_expert_int4 (keep_int4(act_order=True)): gate's and
        up's input order into w13_perm (they must agree); down's order over I applied to the
        rows of gate and up, those stored before it and those to come. Returns the
        projection's (codes, scales, zeros), rows reordered where down's order applies."""
        seen = self._int4_loaded.setdefault(local, set())
        if shard == "down":
            if order is not None:
                self._down_orders[local] = order.long()
                for half in ("gate", "up"):
                    if half in seen:
                        rows = slice(0, self.inter) if half == "gate" else slice(self.inter, None)
                        for t in (self.w13_weight, self.w13_scale, self.w13_zeros):
                            t.data[local, rows] = t.data[local, rows][order.long()]
        else:
            want = order if order is not None else torch.arange(codes.shape[1] * 2)
            other = "up" if shard == "gate" else "gate"
            if other in seen and not torch.equal(self.w13_perm[local].cpu(), want.cpu().int()):
                raise ValueError(
                    f"expert {expert}: gate_proj and up_proj have different act-order input "
                    "orders (g_idx); such experts cannot be kept 4-bit"
                )
            self.w13_perm[local] = want.to(self.w13_perm)
            down = self._down_orders.get(local)
            if down is not None:
                codes, scales, zeros = codes[down], scales[down], zeros[down]
        seen.add(shard)
        return codes, scales, zeros

    def _quant_args(self) -> dict:
        if self.kept is None:
            return {}
        args = {"w13_scale": self.w13_scale, "w2_scale": self.w2_scale}
        if self.int4_group is not None:
            perm = {} if self.w13_perm is None else {"w13_perm": self.w13_perm}
            return {**args, "w13_zeros": self.w13_zeros, "w2_zeros": self.w2_zeros, **perm}
        return args if self.block_size is None else {**args, "block_size": self.block_size}


def _frozen(shape: tuple[int, ...], dtype: torch.dtype, device) -> nn.Parameter:
    return nn.Parameter(torch.empty(shape, dtype=dtype, device=device), requires_grad=False)


def copy_checked(target: torch.Tensor, tensor: torch.Tensor, what: str) -> None:
    if tuple(target.shape) != tuple(tensor.shape):
        raise ValueError(f"{what}: checkpoint shape {tuple(tensor.shape)} != {tuple(target.shape)}")
    target.copy_(tensor)
