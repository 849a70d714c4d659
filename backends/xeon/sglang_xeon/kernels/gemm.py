"""gemm.dense and gemm.int8 on the CPU, plus the derived-weight cache the low-bit GEMMs share.

gemm.dense is oneDNN in the input dtype (bf16 uses AVX-512 BF16 / AMX where present,
accumulating in float32); its `prepare` reorders the weight once into oneDNN's blocked layout
(torch.ops.mkldnn._reorder_linear_weight, what inductor's freezing does), which saves the
per-call reorder F.linear would do. gemm.int8 quantizes activations per token and
multiplies with torch._int_mm (oneDNN s8s8 with VNNI, int32 accumulation, exact as the spec).
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F

CACHE_ENV = "SGLANG_XEON_WEIGHT_CACHE_MB"


class WeightCache:
    """Weights derived from checkpoint tensors (dequantized, or prepacked for oneDNN), kept
    while their sources live and are unchanged, evicted least-recently-used past a byte budget.

    Opt-in: the budget comes from $SGLANG_XEON_WEIGHT_CACHE_MB (default 0, off). An entry is
    keyed on each source tensor's identity, data_ptr, shape, dtype and `_version`, and dropped
    when the first source is freed (so an id is never reused while its entry exists). Writes
    through `tensor.data` (`param.data.copy_(...)`, as weight loaders do) do not bump
    `_version`, so each hit also compares a 16-element sample of every source: that catches a
    rewritten tensor, but not a partial write that misses every sampled element. Hence opt-in:
    enable it where weights are not partially rewritten after the first forward. With it off
    every call derives its weight again (vectorised, but a full pass over the weight)."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self._entries: OrderedDict[tuple, tuple[torch.Tensor, weakref.finalize, tuple]] = (
            OrderedDict()
        )
        self._bytes = 0
        self._lock = threading.Lock()

    def get(
        self,
        sources: tuple[torch.Tensor | None, ...],
        extra: tuple,
        build: Callable[[], torch.Tensor],
    ) -> torch.Tensor:
        """The derived weight for `sources` (+ `extra`, e.g. the target dtype), built by
        `build` on a miss; sources[0] must be a tensor (its lifetime bounds the entry)."""
        if self.budget <= 0:
            return build()
        key = (
            tuple(
                (id(t), t.data_ptr(), tuple(t.shape), t.dtype, t._version)
                for t in sources
                if t is not None
            ),
            extra,
        )
        sample = tuple(_sample(t) for t in sources if t is not None)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[2] == sample:
                self._entries.move_to_end(key)
                return hit[0]
            if hit is not None:
                self._evict(key)
        value = build()
        size = value.numel() * value.element_size()
        if size > self.budget:
            return value
        with self._lock:
            if key not in self._entries:
                finalizer = weakref.finalize(sources[0], self._drop, key)
                self._entries[key] = (value, finalizer, sample)
                self._bytes += size
                while self._bytes > self.budget:
                    self._evict(next(iter(self._entries)))
        return value

    def _evict(self, key: tuple) -> None:
        value, finalizer, _ = self._entries.pop(key)
        finalizer.detach()
        self._bytes -= value.numel() * value.element_size()

    def _drop(self, key: tuple) -> None:
        with self._lock:
            if key in self._entries:
                self._evict(key)

    def clear(self) -> None:
        with self._lock:
            for key in list(self._entries):
                self._evict(key)


def _sample(t: torch.Tensor, count: int = 16) -> tuple[int, ...]:
    """The bytes of `count` elements spread over t: a cheap fingerprint of its contents."""
    flat = t.detach().reshape(-1)
    step = max(1, flat.numel() // count)
    return tuple(flat[::step][:count].contiguous().view(torch.uint8).tolist())


WEIGHT_CACHE = WeightCache(int(float(os.environ.get(CACHE_ENV, "0")) * 2**20))


@functools.lru_cache(maxsize=8)
def can_prepack(dtype: torch.dtype) -> bool:
    """Whether oneDNN here reorders linear weights of this dtype (fp16 needs AVX-512 FP16 or
    AVX-NE-CONVERT, bf16 AVX-512 BF16 or AMX); probed once on a tiny weight."""
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(torch.ones(8, 8, dtype=dtype))
        torch.ops.mkldnn._linear_pointwise(
            torch.ones(1, 8, dtype=dtype), packed, None, "none", [None], ""
        )
        return True
    except Exception:  # the op is missing, or this CPU/dtype is unsupported
        return False


# oneDNN's float16 GEMM is emulated on CPUs without AVX-512 FP16 / AVX-NE-CONVERT (the same
# condition its weight reorder checks): past this many tokens float32 is faster there.
FP16_EMULATED_MIN_TOKENS = 64


def _fp32_instead(x: torch.Tensor) -> bool:
    return (
        x.dtype == torch.float16
        and x.shape[0] >= FP16_EMULATED_MIN_TOKENS
        and not can_prepack(torch.float16)
    )


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None):
    """F.linear in x.dtype, or in float32 where float16 is emulated and the batch is large."""
    if _fp32_instead(x):
        b = None if bias is None else bias.float()
        return F.linear(x.float(), weight.float(), b).to(x.dtype)
    return F.linear(x, weight, bias)


def cached_linear(
    x: torch.Tensor,
    sources: tuple[torch.Tensor | None, ...],
    extra: tuple,
    build: Callable[[], torch.Tensor],
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """linear(x, W, bias) for W = build(), a [N, K] weight in x.dtype derived from `sources`.
    With the weight cache on, W is cached, reordered for oneDNN where it can be (in float32
    where float16 is emulated and the batch is large)."""
    if WEIGHT_CACHE.budget <= 0:
        return linear(x, build(), bias)
    if _fp32_instead(x):

        def build_fp32() -> torch.Tensor:
            return build().float()

        b = None if bias is None else bias.float()
        return cached_linear(x.float(), sources, (*extra, "fp32"), build_fp32, b).to(x.dtype)
    if x.dim() == 2 and can_prepack(x.dtype):
        packed = WEIGHT_CACHE.get(
            sources,
            (*extra, "mkldnn"),
            lambda: torch.ops.mkldnn._reorder_linear_weight(build()),
        )
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [None], "")
    return F.linear(x, WEIGHT_CACHE.get(sources, extra, build), bias)


def prepack(weight: torch.Tensor) -> torch.Tensor:
    """A [N, K] weight reordered into oneDNN's blocked layout (an opaque mkldnn tensor, what
    inductor's freezing makes), or the weight itself where oneDNN cannot reorder its dtype."""
    if weight.device.type != "cpu" or not can_prepack(weight.dtype):
        return weight
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous())


def packed_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None):
    """linear(x, weight, bias) for a weight that may be prepacked (see `prepack`): oneDNN on
    the packed weight when x has its dtype and float32 is not preferred, else the plain path."""
    if bias is not None and bias.dtype != x.dtype:
        bias = bias.to(x.dtype)
    if not weight.is_mkldnn:
        return linear(x, weight.to(x.dtype), bias)
    if x.dtype != weight.dtype or _fp32_instead(x):
        return linear(x, weight.to_dense().to(x.dtype), bias)
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [None], "")


def prepare_dense(args: dict) -> dict:
    """gemm.dense's weight, prepacked once for oneDNN: saves a reorder of the weight on every
    call (at batch 1, bf16, it is most of the call: 17 vs 26 ms for SmolLM2's GEMMs)."""
    return {"weight": prepack(args["weight"])}


def dense(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """weight: [N, K] as the spec has it, or as prepare_dense left it."""
    return packed_linear(x, weight, bias)


def quantize_int8_per_token(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[M, K] float -> (int8 [M, K], float32 scale [M, 1]); the spec's symmetric rounding."""
    xf = x.float()
    scale = xf.abs().amax(dim=-1, keepdim=True) / 127.0
    q = torch.round(xf / torch.where(scale > 0, scale, torch.ones_like(scale)))
    return q.clamp_(-127, 127).to(torch.int8), scale


def _int_mm(a: torch.Tensor, b_t: torch.Tensor) -> torch.Tensor:
    """int8 [M, K] @ int8 [N, K].T -> int32 [M, N]; float32 matmul where _int_mm is missing
    (exact while |acc| < 2**24, relative error 2**-24 beyond)."""
    try:
        return torch._int_mm(a, b_t.t())
    except (AttributeError, RuntimeError):
        return (a.float() @ b_t.float().t()).round_().to(torch.int32)


def int8(
    x: torch.Tensor,
    weight: torch.Tensor,
    weight_scale: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    if x.shape[0] == 0:
        return x.new_zeros(0, weight.shape[0])
    xq, x_scale = quantize_int8_per_token(x)
    out = _int_mm(xq, weight).float() * x_scale * weight_scale.float().unsqueeze(0)
    if bias is not None:
        out += bias.float()
    return out.to(x.dtype)


def dense_rms(x, norm_weight, weight, eps=1e-6, bias=None, residual=None, return_normed=False):
    """gemm.dense_rms as the two ops it is made of (this backend's norm.rms, then `dense`; no
    fused CPU kernel: on the CPU the norm is not a launch to save), so that layers take the
    fused op's path here as on a GPU. weight: as prepare_dense left it (gemm.dense_rms has no
    prepare of its own: layers hand it gemm.dense's prepared weight)."""
    from sglang_xeon import native
    from sglang_xeon.kernels import norm

    rms = norm.native_rms_norm if native.why_unavailable() is None else norm.rms_norm
    if residual is None:
        normed, h = rms(x, norm_weight, eps), None
    else:
        normed, h = rms(x, norm_weight, eps, residual)
    out = [dense(normed, weight, bias)]
    out += [h] if h is not None else []
    out += [normed] if return_normed else []
    return out[0] if len(out) == 1 else tuple(out)


def register(registry) -> None:
    registry.register("gemm.dense", dense, name="xeon.linear", prepare=prepare_dense)
    registry.register("gemm.dense_rms", dense_rms, name="xeon.linear_rms")
    registry.register("gemm.int8", int8, name="xeon.int8_int_mm")
