"""gemm.int4 (W4A16, AWQ and GPTQ with integer zero points) through
torch_npu.npu_weight_quant_batchmatmul(x, weight, antiquant_scale, antiquant_offset,
antiquant_group_size=G): weight int4 values packed eight to an int32 along N by
torch_npu.npu_convert_weight_to_int4pack from signed values in [-8, 7]; the operator computes
x @ ((w + offset) * scale) per group. `prepare` does the repacking once at load time
(glue.int4_for_npu). Act-order (g_idx) and float zero points are declined (the reference
serves them)."""

from __future__ import annotations

from sglang_ascend.kernels.glue import int4_for_npu
from sglang_ascend.kernels.npu import half_only, npu, register_npu


def prepare(args: dict) -> dict:
    signed, offset, scale = int4_for_npu(
        args["qweight"], args["scales"], args["qzeros"], args["packing"]
    )
    packed = npu().npu_convert_weight_to_int4pack(signed.contiguous())
    return {"qweight": packed, "scales": scale, "qzeros": offset}


def int4(x, qweight, scales, qzeros, packing, group_size, g_idx=None, bias=None):
    if g_idx is not None:
        raise ValueError("ascend W4A16: act-order (g_idx) is declined")
    out = npu().npu_weight_quant_batchmatmul(
        x, qweight, scales.to(x.dtype), qzeros.to(x.dtype), antiquant_group_size=group_size
    )
    return out if bias is None else (out.float() + bias.float()).to(x.dtype)


def _unsupported(config) -> str | None:
    variant = str(config.get("variant", ""))
    if config.get("g_idx") is not None or "actorder" in variant or "gidx" in variant:
        return "act-order (g_idx)"
    if config.get("float_zeros") or "floatzeros" in variant:
        return "float zero points"
    return half_only(config)


def register(registry) -> None:
    register_npu(
        registry,
        "gemm.int4",
        int4,
        "npu_weight_quant_batchmatmul",
        prepare=prepare,
        unsupported=_unsupported,
    )
