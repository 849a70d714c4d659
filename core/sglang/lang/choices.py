"""How `select` decides: by the normalised log-likelihood of each choice, the mean logprob of
its tokens (sum of the choice's token logprobs / its number of tokens), so long choices are not
penalised for their length."""

from __future__ import annotations

import math
import random
from typing import Any


def normalized_logprob(token_logprobs: list[tuple[float, Any, Any]]) -> float:
    if not token_logprobs:
        raise ValueError("a choice has no scored token (select at the very start of the text?)")
    return sum(lp for lp, *_ in token_logprobs) / len(token_logprobs)


def decide(
    token_logprobs: list[list[tuple[float, Any, Any]]],
    temperature: float = 0.0,
    rng: random.Random | None = None,
) -> tuple[int, list[float]]:
    """(index of the chosen choice, normalised logprob of every choice). Temperature 0 takes
    the highest (the first of equals); above 0 samples with weights exp(normalised / T)."""
    scores = [normalized_logprob(t) for t in token_logprobs]
    if temperature <= 0:
        return max(range(len(scores)), key=lambda i: (scores[i], -i)), scores
    top = max(scores)
    weights = [math.exp((s - top) / temperature) for s in scores]
    return (rng or random).choices(range(len(scores)), weights=weights)[0], scores
