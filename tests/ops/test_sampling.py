"""sampling.sample reference: greedy and top-k=1 are argmax, a one-token kept set is always
chosen, the filters keep the prefixes worked out by hand, and over evenly spread uniforms the
choices follow the renormalised probabilities."""

from __future__ import annotations

import math

import pytest
import torch
from sglang.ops.sampling import sample


def _call(logits, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, uniforms=None):
    b = logits.shape[0]
    if uniforms is None:
        uniforms = torch.rand(b, generator=torch.Generator().manual_seed(0))
    full = lambda v, dt=torch.float32: torch.full((b,), v, dtype=dt)  # noqa: E731
    return sample(
        logits=logits,
        temperatures=full(temperature),
        top_ks=full(top_k, torch.int32),
        top_ps=full(top_p),
        min_ps=full(min_p),
        uniforms=uniforms,
    )


def _logits_of(probs):
    return torch.tensor([[math.log(p) for p in probs]], dtype=torch.float32)


def test_greedy_is_argmax_lowest_index_on_ties():
    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(1))
    logits[2, 7] = logits[2, 30] = logits[2].max() + 1
    ids = _call(logits, temperature=0.0)
    assert ids.dtype == torch.int64
    assert ids.tolist() == [int(torch.argmax(r)) for r in logits]
    assert int(ids[2]) == 7


def test_top_k_one_is_argmax_whatever_the_uniform():
    logits = torch.randn(5, 100, generator=torch.Generator().manual_seed(2))
    for u in (0.0, 0.5, 0.999):
        ids = _call(logits, temperature=0.7, top_k=1, uniforms=torch.full((5,), u))
        assert ids.tolist() == logits.argmax(dim=-1).tolist()


@pytest.mark.parametrize("filters", [{"min_p": 1.0}, {"top_p": 1e-3}, {"top_k": 1}])
def test_single_kept_token_always_returned(filters):
    logits = _logits_of([0.1, 0.6, 0.3])
    for u in torch.linspace(0, 0.9999, 7).tolist():
        assert _call(logits, uniforms=torch.tensor([u]), **filters).tolist() == [1]


def test_filters_keep_the_hand_worked_prefixes():
    # Sorted: token 2 (0.5), token 0 (0.3), token 1 (0.2). A uniform near 1 picks the last kept.
    logits = _logits_of([0.3, 0.2, 0.5])
    last = torch.tensor([0.9999])
    assert _call(logits, uniforms=last).tolist() == [1]
    assert _call(logits, top_k=2, uniforms=last).tolist() == [0]
    assert _call(logits, top_p=0.45, uniforms=last).tolist() == [2]  # 0.5 reaches 0.45
    assert _call(logits, top_p=0.51, uniforms=last).tolist() == [0]
    assert _call(logits, top_p=0.81, uniforms=last).tolist() == [1]
    assert _call(logits, min_p=0.5, uniforms=last).tolist() == [0]  # 0.2 < 0.25 dropped
    assert _call(logits, min_p=0.3, uniforms=last).tolist() == [1]
    assert _call(logits, top_k=-1, uniforms=last).tolist() == [1]
    # Renormalised over {2, 0}: token 2 holds [0, 0.625), token 0 [0.625, 1).
    assert _call(logits, top_k=2, uniforms=torch.tensor([0.62])).tolist() == [2]
    assert _call(logits, top_k=2, uniforms=torch.tensor([0.63])).tolist() == [0]


def test_frequencies_follow_renormalised_probabilities():
    probs = [0.05, 0.3, 0.1, 0.25, 0.2, 0.1]
    n = 4000
    logits = _logits_of(probs).expand(n, -1).contiguous()
    uniforms = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    temperature = 0.8
    ids = _call(logits, temperature=temperature, top_k=4, uniforms=uniforms)
    tempered = [p ** (1 / temperature) for p in probs]
    kept = sorted(range(6), key=lambda i: -tempered[i])[:4]
    total = sum(tempered[i] for i in kept)
    counts = torch.bincount(ids, minlength=6)
    for i in range(6):
        expected = tempered[i] / total if i in kept else 0.0
        assert abs(int(counts[i]) / n - expected) <= 2 / n


def test_temperature_sharpens():
    logits = _logits_of([0.4, 0.6])
    # softmax(log p / 0.5) = p^2 / sum p^2: token 1 holds [0, 0.36 / 0.52) = [0, 0.692).
    assert _call(logits, temperature=0.5, uniforms=torch.tensor([0.68])).tolist() == [1]
    assert _call(logits, temperature=0.5, uniforms=torch.tensor([0.70])).tolist() == [0]


def test_empty_batch():
    assert _call(torch.zeros(0, 10)).shape == (0,)
