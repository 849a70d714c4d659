"""Scheduling never changes what a request produces: batched vs alone, with and without
chunked prefill and the radix cache, and under KV pressure with retraction."""

from __future__ import annotations

import pytest
from sglang.engine.engine import Engine
from tiny_models import save_tiny_model

GREEDY = {"max_new_tokens": 24, "temperature": 0, "ignore_eos": True}
PROMPTS = [
    [1] + [(7 * i + 13 * j) % 500 + 3 for j in range(n)]
    for i, n in enumerate((5, 40, 17, 90, 3, 64, 33, 120))
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model("llama", str(tmp_path_factory.mktemp("llama")))


def engine(path, **kw):
    kw.setdefault("max_total_tokens", 4096)
    return Engine(
        model_path=path,
        device="xeon",
        dtype="float32",
        skip_tokenizer_init=True,
        log_level="warning",
        **kw,
    )


@pytest.fixture(scope="module")
def alone(model_dir):
    with engine(model_dir) as e:
        return [e.generate(input_ids=p, sampling_params=GREEDY)["output_ids"] for p in PROMPTS]


@pytest.mark.parametrize("chunked", [False, True, "mixed"])
@pytest.mark.parametrize("radix", [True, False])
def test_batch_equals_one_at_a_time(model_dir, alone, chunked, radix):
    """ "mixed": chunked prefill with --enable-mixed-chunk, so the later chunks run in the
    same forwards as the decode steps of the prompts already prefilled."""
    kw = {"chunked_prefill_size": 16 if chunked else -1, "disable_radix_cache": not radix}
    if chunked == "mixed":
        kw["enable_mixed_chunk"] = True
    with engine(model_dir, **kw) as e:
        outs = e.generate(input_ids=PROMPTS, sampling_params=GREEDY)
        assert [o["output_ids"] for o in outs] == alone
        if chunked == "mixed":
            assert e.get_stats()["mixed_steps"] > 0
        e.check_idle()


def test_shared_prefix_hits_cache_and_keeps_outputs(model_dir):
    system = [1] + [(11 * j) % 400 + 5 for j in range(100)]
    prompts = [system + [200 + i, 300 + i, 400 + i] for i in range(6)]
    results = {}
    for radix in (True, False):
        with engine(model_dir, disable_radix_cache=not radix) as e:
            first = e.generate(input_ids=prompts[0], sampling_params=GREEDY)
            rest = e.generate(input_ids=prompts[1:], sampling_params=GREEDY)
            results[radix] = [first] + rest
            e.check_idle()
    cached = [o["meta_info"]["cached_tokens"] for o in results[True][1:]]
    assert all(c >= len(system) for c in cached), cached
    assert all(o["meta_info"]["cached_tokens"] == 0 for o in results[False])
    assert [o["output_ids"] for o in results[True]] == [o["output_ids"] for o in results[False]]


def test_kv_pressure_retracts_and_completes_everything(model_dir):
    prompts = [[1] + [(5 * i + 3 * j) % 480 + 10 for j in range(199)] for i in range(64)]
    params = {"max_new_tokens": 64, "temperature": 0, "ignore_eos": True}
    with engine(model_dir, max_total_tokens=1024) as e:
        outs = e.generate(input_ids=prompts, sampling_params=params)
        stats = e.get_stats()
        e.check_idle()
    assert all(len(o["output_ids"]) == 64 for o in outs)
    assert stats["retractions"] > 0, stats
    with engine(model_dir) as e:  # every request, run alone, gives the same tokens
        for prompt, out in zip(prompts, outs):
            solo = e.generate(input_ids=prompt, sampling_params=params)
            assert solo["output_ids"] == out["output_ids"]
