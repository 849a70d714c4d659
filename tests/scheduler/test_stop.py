"""StopChecker's stop_regex against a direct search of the decoded output (the default model's
tokenizer): it ends the request at the first token whose text completes a match, names the
pattern, and the detokenizer trims the text at the match (unless no_stop_trim)."""

from __future__ import annotations

import re

import pytest
from sglang.engine.detokenizer import IncrementalDetokenizer
from sglang.model_loader import default_model_path, load_tokenizer
from sglang.sampling.params import SamplingParams
from sglang.scheduler.req import Req
from sglang.scheduler.stop import StopChecker

TEXT = " The answer, after some thought, is 42 apples and 7 pears."


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(default_model_path())


def first_stop(tokenizer, params: dict) -> tuple[int, object]:
    """Feed TEXT's tokens one by one; the count of tokens at the first stop, and the reason."""
    ids = tokenizer.encode(TEXT, add_special_tokens=False)
    req = Req("r", [1, 2, 3], SamplingParams.from_dict({"max_new_tokens": 500, **params}))
    checker = StopChecker(tokenizer, context_len=4096)
    for token in ids:
        req.output_ids.append(token)
        reason = checker.check(req)
        if reason is not None:
            return len(req.output_ids), reason
    return len(ids), None


@pytest.mark.parametrize("pattern", [r"\d+", r"apples?\s+and", r"(pears|plums)\.", r"is\s\d"])
def test_stop_regex_stops_at_the_first_completed_match(tokenizer, pattern):
    ids = tokenizer.encode(TEXT, add_special_tokens=False)
    expected = next(
        k for k in range(1, len(ids) + 1) if re.search(pattern, tokenizer.decode(ids[:k]))
    )
    n, reason = first_stop(tokenizer, {"stop_regex": ["zzz", pattern]})
    assert n == expected
    assert reason.to_json() == {"type": "stop", "matched": pattern}
    assert reason.regex


def test_no_match_runs_on(tokenizer):
    n, reason = first_stop(tokenizer, {"stop_regex": r"bananas"})
    assert reason is None


def test_min_new_tokens_holds_stop_regex_back(tokenizer):
    early, _ = first_stop(tokenizer, {"stop_regex": r"\w+"})
    late, reason = first_stop(tokenizer, {"stop_regex": r"\w+", "min_new_tokens": 5})
    assert (early, late) == (1, 5) and reason.matched == r"\w+"


@pytest.mark.parametrize("no_stop_trim", [False, True])
def test_detokenizer_trims_at_the_regex_match(tokenizer, no_stop_trim):
    pattern = r"\d+ apples"
    n, reason = first_stop(tokenizer, {"stop_regex": pattern})
    ids = tokenizer.encode(TEXT, add_special_tokens=False)[:n]
    detok = IncrementalDetokenizer(tokenizer, [1, 2, 3], no_stop_trim=no_stop_trim)
    for token in ids:
        detok.add([token])
    detok.finish(reason.matched, reason.regex)
    full = tokenizer.decode(ids)
    assert detok.text == (full if no_stop_trim else full[: re.search(pattern, full).start()])
    assert detok.text.endswith("42 apples" if no_stop_trim else "is ")
