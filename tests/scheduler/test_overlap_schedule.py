"""The overlap scheduler (decode step t+1 launched before step t is processed) gives exactly the
serial scheduler's outputs: same tokens, same finish reasons, for requests that stop by length,
by a stop token, that arrive while others decode, that are aborted in flight, and for requests
that force the serial path (penalties, logprobs, min_new_tokens) mixed in. Every KV slot is free
again afterwards.

The CPU runtime is synchronous, so the scheduler would not pick overlap by itself; the tests
switch it on (`scheduler.overlap = True`): the bookkeeping is the same on every device, only
the device's asynchrony (what it buys) differs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
from sglang.engine.scheduler_process import build_scheduler  # noqa: E402
from sglang.sampling.params import SamplingParams  # noqa: E402
from sglang.scheduler.req import Req  # noqa: E402
from sglang.server_args import ServerArgs  # noqa: E402
from tiny_models import save_tiny_model  # noqa: E402

PROMPTS = [[1] + [(13 * i + 7 * j) % 480 + 5 for j in range(9 + 5 * i)] for i in range(8)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model("llama", str(tmp_path_factory.mktemp("llama")))


def make(path: str, overlap: bool, **kw):
    args = ServerArgs.from_kwargs(
        model_path=path,
        device="xeon",
        dtype="float32",
        skip_tokenizer_init=True,
        max_total_tokens=kw.pop("max_total_tokens", 4096),
        log_level="warning",
        **kw,
    )
    scheduler, _ = build_scheduler(args)
    scheduler.overlap = overlap
    return scheduler


def params(i: int, **extra) -> SamplingParams:
    p = {"max_new_tokens": 5 + 3 * i, "temperature": 0, "ignore_eos": True, **extra}
    return SamplingParams.from_dict(p)


def drive(scheduler, arrivals: dict[int, list[Req]], aborts: dict[int, str] | None = None):
    """Step until idle; requests in arrivals[k] are added before step k, aborts[k] is aborted
    before step k. Returns rid -> (tokens, finish reason type, matched)."""
    aborts = aborts or {}
    tokens: dict[str, list[int]] = {}
    finished: dict[str, tuple] = {}

    def take(out):
        tokens.setdefault(out.rid, []).extend(out.new_token_ids)
        if out.finished is not None:
            assert out.rid not in finished, f"{out.rid} finished twice"
            finished[out.rid] = (out.finished.type, out.finished.matched)

    k = 0
    while scheduler.has_work() or any(j >= k for j in arrivals) or any(j >= k for j in aborts):
        for req in arrivals.get(k, []):
            assert scheduler.add_request(req) is None
        if k in aborts:
            out = scheduler.abort(aborts[k])
            if out is not None:
                take(out)
        for out in scheduler.step():
            take(out)
        k += 1
        assert k < 10_000
    scheduler.check_idle()
    return {rid: (tokens.get(rid, []), finished.get(rid)) for rid in finished}


def workload(eos_ids, stop_token: int | None = None, mixed: bool = False):
    arrivals: dict[int, list[Req]] = {0: [], 6: [], 11: []}
    for i, prompt in enumerate(PROMPTS):
        extra = {}
        if stop_token is not None and i % 2 == 0:
            extra = {"ignore_eos": False, "stop_token_ids": [stop_token]}
        if mixed and i == 3:
            extra = {"frequency_penalty": 0.5}
        if mixed and i == 5:
            extra = {"min_new_tokens": 4}
        req = Req(f"r{i}", prompt, params(i, **extra), eos_ids)
        if mixed and i == 6:
            req = Req(f"r{i}", prompt, params(i), eos_ids, return_logprob=True)
        arrivals[0 if i < 4 else (6 if i < 6 else 11)].append(req)
    return arrivals


@pytest.mark.parametrize("mixed", [False, True], ids=["plain", "mixed-serial-features"])
def test_overlap_gives_the_serial_outputs(model_dir, mixed):
    serial = make(model_dir, overlap=False)
    expected = drive(serial, workload(serial.eos_ids, mixed=mixed))
    overlapped = make(model_dir, overlap=True)
    got = drive(overlapped, workload(overlapped.eos_ids, mixed=mixed))
    assert got == expected
    assert all(finish[0] == "length" for _, finish in expected.values())
    assert overlapped.stats.decode_steps >= serial.stats.decode_steps
    assert serial.stats.overlapped_decode_steps == 0
    if not mixed:  # mixed: a request with logprobs runs throughout, so every step is serial
        assert overlapped.stats.overlapped_decode_steps > serial.stats.decode_steps // 2


def test_overlap_with_stop_tokens(model_dir):
    serial = make(model_dir, overlap=False)
    probe = drive(serial, workload(serial.eos_ids))
    # A token the model does produce mid-way for r0: requests asking for it stop there.
    stop = probe["r0"][0][2]
    serial = make(model_dir, overlap=False)
    expected = drive(serial, workload(serial.eos_ids, stop_token=stop))
    assert expected["r0"] == (probe["r0"][0][: probe["r0"][0].index(stop) + 1], ("stop", stop))
    overlapped = make(model_dir, overlap=True)
    assert drive(overlapped, workload(overlapped.eos_ids, stop_token=stop)) == expected


def test_overlap_abort_in_flight(model_dir):
    """An abort of a request whose step is in flight: it ends as aborted with the tokens
    produced so far; the others are unaffected; nothing leaks."""

    def run(overlap):
        s = make(model_dir, overlap=overlap)
        return drive(s, workload(s.eos_ids), aborts={8: "r2"})

    serial, overlapped = run(False), run(True)
    assert overlapped["r2"][1] == ("abort", None)
    assert {k: v for k, v in overlapped.items() if k != "r2"} == {
        k: v for k, v in serial.items() if k != "r2"
    }
    # What r2 produced before the abort is a prefix of its uninterrupted output.
    alone = make(model_dir, overlap=False)
    full = drive(alone, {0: [Req("r2", PROMPTS[2], params(2), alone.eos_ids)]})["r2"][0]
    assert overlapped["r2"][0] == full[: len(overlapped["r2"][0])]


def test_overlap_falls_back_to_serial_under_kv_pressure(model_dir):
    """A pool too small for every request at once: retractions happen on the serial path and
    the outputs still equal the serial scheduler's."""
    serial = make(model_dir, overlap=False, max_total_tokens=160)
    expected = drive(serial, workload(serial.eos_ids))
    overlapped = make(model_dir, overlap=True, max_total_tokens=160)
    assert drive(overlapped, workload(overlapped.eos_ids)) == expected


@pytest.mark.parametrize("overlap", [False, True], ids=["serial", "overlap"])
@pytest.mark.parametrize("pool", [4096, 160], ids=["roomy", "kv-pressure"])
def test_mixed_chunk_gives_the_same_outputs(model_dir, overlap, pool):
    """--enable-mixed-chunk: requests arriving while others decode are prefilled in forwards
    that also decode the running ones (with a chunk small enough that prompts take several);
    every request still gets the tokens of the plain serial scheduler, retractions included,
    with serial-path features (penalties, min_new_tokens, logprobs) mixed in."""
    for mixed_features in (False, True):
        serial = make(model_dir, overlap=False, max_total_tokens=pool)
        expected = drive(serial, workload(serial.eos_ids, mixed=mixed_features))
        s = make(
            model_dir,
            overlap=overlap,
            max_total_tokens=pool,
            enable_mixed_chunk=True,
            chunked_prefill_size=24,
        )
        assert drive(s, workload(s.eos_ids, mixed=mixed_features)) == expected
        assert s.stats.mixed_steps > 0
        assert s.stats.prefill_steps + s.stats.decode_steps == s.stats.steps


def test_overlap_launches_no_step_past_the_last_token(model_dir):
    """A request whose token in flight is its last by length is not fed to another step: the
    step that returns its final output leaves nothing in flight, so a request arriving next
    is prefilled at once rather than after a forward whose token would be dropped. The
    outputs are the serial scheduler's."""
    serial = make(model_dir, overlap=False)
    expected = drive(serial, {0: [Req("a", PROMPTS[0], params(1), serial.eos_ids)]})
    s = make(model_dir, overlap=True)
    assert s.add_request(Req("a", PROMPTS[0], params(1), s.eos_ids)) is None
    tokens, steps = [], 0
    while True:
        outs = s.step()
        steps += 1
        tokens += [t for o in outs for t in o.new_token_ids]
        if any(o.finished is not None for o in outs):
            break
    assert (tokens, ("length", 8)) == expected["a"]
    assert s.overlapped.inflight is None and not s.has_work()
    assert s.stats.overlapped_decode_steps == len(tokens) - 2  # every decode after the first
    s.check_idle()
