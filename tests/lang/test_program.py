"""The program state and its expressions, on a scripted backend (no server): appending,
variables, roles, fork/join, select's decision rule, run_batch's traced prefix, streaming,
errors and the usage record."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import sglang as sgl
from fake_backend import FakeBackend
from sglang.lang.choices import decide
from sglang.lang.ir import ExprList, GenParams
from sglang.lang.tracer import traced_prefix


def test_import_sglang_stays_light():
    code = (
        "import sys, sglang as sgl; sgl.gen; sgl.RuntimeEndpoint; sgl.function; "
        "print(sorted(m for m in ('torch', 'transformers', 'zmq', 'jinja2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_expressions_concatenate_in_order():
    expr = "a" + sgl.gen("x") + "b" + sgl.select("y", choices=["1", "2"])
    assert isinstance(expr, ExprList)
    assert [type(e).__name__ for e in expr.exprs] == ["Constant", "Gen", "Constant", "Select"]
    with pytest.raises(TypeError, match="str or sglang expressions"):
        sgl.gen("x") + 3


def test_gen_params_merge_and_server_fields():
    g = sgl.gen("x", max_tokens=5, stop="\n", json_schema={"type": "object"})
    defaults = GenParams(max_new_tokens=128, temperature=0.5, stop=["END"])
    merged = g.params.merged_over(defaults)
    assert merged.sampling_params() == {
        "max_new_tokens": 5,
        "stop": ["\n"],
        "temperature": 0.5,
        "json_schema": json.dumps({"type": "object"}),
    }
    assert sgl.gen("n", dtype=int).params.regex == r"[-+]?[0-9]+"
    assert type(sgl.gen("c", choices=["a", "b"])).__name__ == "Select"
    with pytest.raises(ValueError, match="regex or json_schema"):
        sgl.gen("x", regex="a", json_schema="{}")


def test_append_gen_and_variables():
    be = FakeBackend(reply=lambda text, p: " Paris")

    @sgl.function
    def capital(s, country):
        s += "The capital of " + country + " is" + sgl.gen("city", max_tokens=4)
        s += "."

    state = capital.run("France", backend=be, temperature=0)
    assert state.text() == "The capital of France is Paris."
    assert state["city"] == " Paris"
    prompt, params = be.gens[0]
    assert prompt.text == "The capital of France is"
    assert params.max_new_tokens == 4 and params.temperature == 0


def test_reading_a_variable_waits_only_for_its_value():
    be = FakeBackend(reply=lambda text, p: "slow", delay=0.3)

    @sgl.function
    def prog(s):
        start = time.perf_counter()
        s += sgl.gen("a")
        s["submitted_after"] = time.perf_counter() - start
        s["value"] = s["a"]

    state = prog.run(backend=be)
    assert state["submitted_after"] < 0.2 and state["value"] == "slow"


def test_roles_use_the_chat_template_and_record_messages():
    be = FakeBackend(reply=lambda text, p: "Hi there!")

    @sgl.function
    def chat(s):
        s += sgl.user("Hello")
        s += sgl.assistant(sgl.gen("answer"))
        with s.user():
            s += "Bye"

    state = chat.run(backend=be)
    assert state.text() == (
        "<|im_start|>system\nDefault.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
        "<|im_start|>assistant\nHi there!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
    )
    assert state.messages() == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there!"},
        {"role": "user", "content": "Bye"},
    ]
    assert be.gens[0][0].text.endswith("<|im_start|>assistant\n")
    assert be.gens[0][0].role == "assistant"


def test_roles_do_not_nest():
    @sgl.function
    def bad(s):
        s += sgl.user_begin() + sgl.assistant_begin()

    with pytest.raises(sgl.ProgramError, match="do not nest"):
        bad.run(backend=FakeBackend())


def test_select_takes_the_highest_mean_token_logprob():
    # " yes" sums higher (-1.2 > -1.5) but " no way" has the higher mean per token.
    be = FakeBackend(scores={" yes": [-1.2], " no way": [-0.5, -0.5, -0.5]})

    @sgl.function
    def prog(s):
        s += "Answer:" + sgl.select("a", choices=[" yes", " no way"])

    state = prog.run(backend=be)
    assert state["a"] == " no way" and state.text() == "Answer: no way"
    meta = state.get_meta_info("a")
    assert meta["normalized_prompt_logprobs"] == pytest.approx([-1.2, -0.5])
    assert be.scored == [(be.scored[0][0], [" yes", " no way"])]
    assert be.scored[0][0].text == "Answer:"


def test_decide_breaks_ties_to_the_first_and_samples_with_temperature():
    import random

    assert decide([[(-1.0, 1, None)], [(-1.0, 2, None)]])[0] == 0
    rng = random.Random(0)
    picks = [decide([[(-0.1, 0, 0)], [(-3.0, 0, 0)]], 1.0, rng)[0] for _ in range(400)]
    assert 0.85 < picks.count(0) / 400 < 0.98  # e^-0.1 : e^-3 = 0.948


def test_fork_sends_the_prefix_once_and_join_gathers():
    be = FakeBackend(reply=lambda text, p: text[-1])

    @sgl.function
    def prog(s):
        s += "Shared prefix "
        forks = s.fork(3)
        forks += lambda i: str(i)
        forks += sgl.gen("last")
        forks.join()

    state = prog.run(backend=be)
    assert be.prefixes == ["Shared prefix "]
    assert state["last"] == ["0", "1", "2"]
    assert state.text() == "Shared prefix "


def test_join_concatenate_and_single_fork_sends_nothing():
    be = FakeBackend()

    @sgl.function
    def prog(s):
        s += "Q:"
        with s.copy() as c:
            c += " copy"
        forks = s.fork(2)
        forks += lambda i: f" [{i}]"
        forks.join(mode="concate_and_append")

    state = prog.run(backend=be)
    assert state.text() == "Q: [0] [1]"
    assert be.prefixes == ["Q:"]  # the fork(2) only; copy() is fork(1)


def test_forks_run_concurrently():
    be = FakeBackend(delay=0.4)

    @sgl.function
    def prog(s):
        s += "x"
        forks = s.fork(4)
        forks += sgl.gen("g")
        forks.join()

    start = time.perf_counter()
    prog.run(backend=be)
    assert time.perf_counter() - start < 4 * 0.4


def test_var_scope_and_set_var():
    @sgl.function
    def prog(s):
        s += "a"
        with s.var_scope("mid"):
            s += "b" + sgl.gen()
        s += "c"

    state = prog.run(backend=FakeBackend(reply=lambda t, p: "G"))
    assert state["mid"] == "bG" and state.text() == "abGc"


def test_usage_sums_requests_of_forks_too():
    be = FakeBackend(scores={"a": [-1.0], "b": [-2.0]})

    @sgl.function
    def prog(s):
        s += "p" + sgl.select("x", choices=["a", "b"])
        f = s.fork(2)
        f += sgl.select("y", choices=["a", "b"])
        f.join()

    state = prog.run(backend=be)
    kinds = sorted(r.kind for r in state.requests)
    assert kinds == ["prefix", "select", "select", "select"]
    assert state.cached_tokens == 3 * 7 and state.prompt_tokens == 3 * 10 + len("pa")


def test_run_batch_sends_the_traced_prefix_once():
    be = FakeBackend(scores={" pos": [-1.0], " neg": [-2.0]})
    intro = "Few-shot examples. " * 6

    @sgl.function
    def classify(s, header, review):
        s += intro + header
        s += f"Review: {review}\nLabel:"
        s += sgl.select("label", choices=[" pos", " neg"])

    batch = [{"header": "H. ", "review": f"r{i}"} for i in range(5)]
    states = classify.run_batch(batch, backend=be, num_threads=3)
    assert be.prefixes[0] == intro + "H. "  # the shared argument is part of it
    assert len(be.prefixes) == 1
    assert [s["label"] for s in states] == [" pos"] * 5


def test_traced_prefix_stops_at_the_first_varying_use_and_at_gen():
    @sgl.function
    def prog(s, a, b):
        s += "start " + a
        s += sgl.gen("x")
        s += b

    be = FakeBackend()
    prefix = traced_prefix(prog.func, be, ["a", "b"], [{"a": "A", "b": 1}, {"a": "A", "b": 2}])
    assert prefix.text == "start A"
    prefix = traced_prefix(prog.func, be, ["a", "b"], [{"a": "A", "b": 1}, {"a": "Z", "b": 2}])
    assert prefix.text == ""
    assert be.gens == []


def test_a_failing_program_raises_and_run_batch_keeps_the_others():
    def reply(text, params):
        if "bad" in text:
            raise RuntimeError("server says no")
        return "ok"

    @sgl.function
    def prog(s, x):
        s += x + sgl.gen("out")

    with pytest.raises(sgl.ProgramError, match="server says no"):
        prog.run("bad", backend=FakeBackend(reply=reply))
    states = prog.run_batch([("good",), ("bad",)], backend=FakeBackend(reply=reply))
    assert states[0]["out"] == "ok" and states[0].error() is None
    assert isinstance(states[1].error(), RuntimeError)
    with pytest.raises(sgl.ProgramError):
        states[1]["out"]


def test_stream_yields_text_as_it_grows():
    be = FakeBackend(reply=lambda t, p: "abcdef", delay=0.05)

    @sgl.function
    def prog(s):
        s += "Q:" + sgl.gen("answer") + "!"

    state = prog.run(backend=be, stream=True)
    pieces = list(state.text_iter())
    assert "".join(pieces) == "Q:abcdef!" and len(pieces) >= 3
    assert "".join(state.text_iter("answer")) == "abcdef"


def test_chat_only_backend_requires_gen_to_open_an_assistant_turn():
    @sgl.function
    def prog(s):
        s += sgl.user("hi") + "loose text" + sgl.gen("x")

    with pytest.raises(sgl.ProgramError, match="right after sgl.assistant_begin"):
        prog.run(backend=FakeBackend(chat=True))


def test_default_backend_and_missing_backend():
    @sgl.function
    def prog(s):
        s += sgl.gen("x")

    sgl.set_default_backend(None)
    with pytest.raises(ValueError, match="no backend"):
        prog.run()
    sgl.set_default_backend(FakeBackend(reply=lambda t, p: "d"))
    try:
        assert prog()["x"] == "d"
    finally:
        sgl.set_default_backend(None)


def test_openai_chat_model_cannot_select():
    be = sgl.OpenAI("m", base_url="http://127.0.0.1:9", api_key="k")
    with pytest.raises(sgl.FeatureUnavailable, match="log-likelihood of prompt tokens"):
        be.score(sgl.lang.backend.base.Prompt("x"), ["a"])


def test_state_is_thread_safe_for_parallel_readers():
    be = FakeBackend(reply=lambda t, p: "v", delay=0.1)

    @sgl.function
    def prog(s):
        for i in range(5):
            s += sgl.gen(f"g{i}")

    state = prog.run(backend=be, stream=True)
    seen = []
    threads = [threading.Thread(target=lambda i=i: seen.append(state[f"g{i}"])) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == ["v"] * 5
