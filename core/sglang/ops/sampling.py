"""sampling.sample: temperature, top-k, top-p and min-p sampling, driven by given uniforms.

The randomness is an input (one uniform per row), so the op is a pure function and a backend
can be checked exactly. Penalties, logit bias and the grammar mask are applied to the logits
before this op; logprobs are computed apart from it.
"""

from __future__ import annotations

import torch

from sglang.ops.spec import EXACT, Case, OpSpec, Tolerance, case_name, compute_dtype
from sglang.ops.specs import register_spec

GREEDY_TEMPERATURE = 1e-6


def sample(
    logits: torch.Tensor,
    temperatures: torch.Tensor,
    top_ks: torch.Tensor,
    top_ps: torch.Tensor,
    min_ps: torch.Tensor,
    uniforms: torch.Tensor,
) -> torch.Tensor:
    """logits: [B, V] float32; temperatures, top_ps, min_ps, uniforms: [B] float32 (uniforms
    in [0, 1)); top_ks: [B] int32 -> ids [B] int64. Row b:

    - temperature < 1e-6: greedy, argmax of the logits (the lowest index on ties).
    - otherwise probs = softmax(logits / temperature), in float32 (float64 under the oracle),
      and the tokens sorted by descending probability, ties by ascending index. Three filters,
      each judged on these unfiltered probs, keep a prefix of that order:
        top-k: the first top_k tokens (top_k <= 0 or >= V: all);
        top-p: the smallest prefix whose cumulative probability reaches top_p, i.e. token i
               stays iff the probability before it is < top_p (top_p >= 1: all);
        min-p: the tokens with prob >= min_p * max prob;
      the first token always stays. The kept probs are renormalised (divided by their sum S)
      and the token chosen by inverse CDF in that order: the first kept token i with
      uniform * S < C_i, C_i the cumulative kept probability through i (the last kept token
      if rounding leaves none).
    """
    acc = compute_dtype(logits)
    out = torch.empty(logits.shape[0], dtype=torch.int64, device=logits.device)
    for b in range(logits.shape[0]):
        row = logits[b].to(acc)
        temperature = temperatures[b].to(acc)
        if float(temperature) < GREEDY_TEMPERATURE:
            out[b] = int(row.argmax())
            continue
        probs, order = (row / temperature).softmax(dim=-1).sort(descending=True, stable=True)
        keep = kept_prefix(probs, int(top_ks[b]), top_ps[b].to(acc), min_ps[b].to(acc))
        cdf = (probs * keep).cumsum(dim=0)
        target = uniforms[b].to(acc) * cdf[-1]
        i = int(torch.searchsorted(cdf, target.reshape(1), right=True))
        out[b] = order[min(i, int(keep.sum()) - 1)]
    return out


def kept_prefix(
    probs: torch.Tensor, top_k: int, top_p: torch.Tensor, min_p: torch.Tensor
) -> torch.Tensor:
    """probs: [V] sorted descending -> bool [V], the kept prefix (see `sample`)."""
    vocab = probs.shape[0]
    keep = torch.ones(vocab, dtype=torch.bool, device=probs.device)
    if 0 < top_k < vocab:
        keep[top_k:] = False
    if float(top_p) < 1.0:
        before = torch.cat((probs.new_zeros(1), probs.cumsum(dim=0)[:-1]))
        keep &= before < top_p
    keep &= probs >= min_p * probs[0]
    keep[0] = True
    return keep


# (batch, vocab, greedy_fraction, filters): "mixed" rows may keep the whole vocabulary;
# "bounded" rows all have a finite top_k or a top_p < 1 (a short kept prefix).
SHAPES = (
    (0, 1000, 0.0, "mixed"),
    (1, 1000, 1.0, "mixed"),
    (1, 1000, 0.0, "mixed"),
    (8, 1000, 0.25, "mixed"),
    (64, 1000, 0.3, "mixed"),
    (16, 32000, 0.25, "mixed"),
    (7, 32001, 0.0, "mixed"),
    (64, 32064, 0.2, "mixed"),
    (16, 32000, 0.25, "bounded"),
    (5, 151936, 0.0, "bounded"),
)
MARGIN = 1e-4


def _cases() -> list[Case]:
    dt = torch.float32
    return [
        Case(
            "sampling.sample",
            case_name(dt, f"B{b}", f"V{v}", f"greedy{int(g * 100)}", f),
            dt,
            {"batch": b, "vocab": v, "greedy": g, "filters": f},
        )
        for b, v, g, f in SHAPES
    ]


def _inputs(case: Case, gen: torch.Generator) -> dict:
    """Logits are normal quantiles (all distinct, neighbours apart by >= 2.5 * scale / V) in a
    random order, scaled per row, so no two probabilities are close enough for float32 to swap
    them. top_p, min_p and the uniforms are drawn again while, in float64, they sit within
    1e-4 of a decision boundary (a cumulative probability, a probability ratio, a CDF step)."""
    b, v = case.params["batch"], case.params["vocab"]
    quantiles = torch.special.ndtri((torch.arange(v, dtype=torch.float64) + 0.5) / v)
    perms = [torch.randperm(v, generator=gen) for _ in range(b)]
    scales = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    logits = torch.zeros(b, v, dtype=torch.float64)
    for i in range(b):
        scale = scales[int(torch.randint(0, 4, (1,), generator=gen))]
        logits[i] = quantiles[perms[i]] * scale + float(torch.randn(1, generator=gen))
    logits = logits.to(torch.float32)
    greedy = torch.rand(b, generator=gen) < case.params["greedy"]
    temperatures = torch.where(greedy, 0.0, 0.3 + 1.2 * torch.rand(b, generator=gen))
    if bool(greedy.any()):
        first = int(greedy.nonzero()[0])
        logits[first, v // 3] = logits[first].max()  # a greedy tie: the lower index wins
    bounded = case.params["filters"] == "bounded"
    k_choices = torch.tensor([0, 1, 5, 40, 1000] if bounded else [0, -1, 1, 5, 40, 1000, v])
    top_ks = k_choices[torch.randint(0, len(k_choices), (b,), generator=gen)].to(torch.int32)
    top_ps = torch.ones(b, dtype=torch.float32)
    min_ps = torch.zeros(b, dtype=torch.float32)
    uniforms = torch.zeros(b, dtype=torch.float32)
    for i in range(b):
        probs = (logits[i].double() / temperatures[i].double()).softmax(-1)
        probs = probs.sort(descending=True, stable=True).values
        must_cut = bounded and int(top_ks[i]) == 0
        if not greedy[i] and (must_cut or float(torch.rand(1, generator=gen)) < 0.7):
            top_ps[i] = _away(gen, 0.3, 0.98, probs.cumsum(0), MARGIN, 1.0)
        if not greedy[i] and float(torch.rand(1, generator=gen)) < 0.5:
            min_ps[i] = _away(gen, 0.0, 0.3, probs / probs[0], MARGIN, 0.0)
        keep = kept_prefix(probs, int(top_ks[i]), top_ps[i].double(), min_ps[i].double())
        cdf = (probs * keep).cumsum(0)
        steps = (cdf / cdf[-1])[: int(keep.sum()) - 1]
        uniforms[i] = _away(gen, 0.0, 1.0, steps, MARGIN, None, probs * keep / cdf[-1])
    return {
        "logits": logits,
        "temperatures": temperatures.to(torch.float32),
        "top_ks": top_ks,
        "top_ps": top_ps,
        "min_ps": min_ps,
        "uniforms": uniforms,
    }


def _away(
    gen: torch.Generator,
    low: float,
    high: float,
    boundaries: torch.Tensor,
    margin: float,
    fallback: float | None,
    masses: torch.Tensor | None = None,
) -> float:
    """A float32 value in [low, high) at least `margin` from every boundary (float64). Without
    a fallback, the middle of the largest mass's interval is taken when draws keep failing."""
    draws = (low + (high - low) * torch.rand(256, generator=gen)).to(torch.float32)
    if boundaries.numel() == 0:
        return float(draws[0])
    edges = boundaries.sort().values
    at = torch.searchsorted(edges, draws.double()).clamp(1, edges.numel() - 1)
    gaps = torch.minimum((draws.double() - edges[at - 1]).abs(), (edges[at] - draws).abs())
    if edges.numel() == 1:
        gaps = (draws.double() - edges[0]).abs()
    ok = (gaps > margin).nonzero()
    if ok.numel():
        return float(draws[int(ok[0])])
    if fallback is not None:
        return fallback
    j = int(masses.argmax())
    cdf = masses.cumsum(0)
    return float(cdf[j] - masses[j] / 2)


SPEC = register_spec(
    OpSpec(
        name="sampling.sample",
        signature=(
            "(logits[B,V] f32, temperatures[B] f32, top_ks[B] i32, top_ps[B] f32, "
            "min_ps[B] f32, uniforms[B] f32) -> ids[B] int64"
        ),
        reference=sample,
        cases=_cases,
        make_inputs=_inputs,
        tolerances={torch.float32: Tolerance()},
        metric=EXACT,
    )
)
