"""API fuzzing: schemathesis generates requests for every route of the server's own
/openapi.json, schema-valid ("positive") and schema-violating ("negative"), plus schema-valid
sampling fields around a valid prompt ("engine") so that odd values reach the scheduler. The
server under test has a small context, so no generation can run long.

Asserted for every request: no 5xx, every 4xx with an OpenAI-style error body, an answer within
REQUEST_TIMEOUT_S. Afterwards: /health 200, the same greedy answer as before the fuzzing, no
request left in the scheduler, every KV slot free or held by the prefix cache (all free after a
flush). Then the regressions behind the fuzzer's finds, and what a dead scheduler looks like.

Deterministic: hypothesis derandomized from the schema, no example database, no shrinking (each
shrink step would be another request; a failure prints the curl command that reproduces it).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from server_process import ServerProcess, free_port

schemathesis = pytest.importorskip("schemathesis", reason="the test extra installs schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402 (after importorskip)
from schemathesis import GenerationMode  # noqa: E402
from sglang.server.app import create_app  # noqa: E402
from sglang.server.openapi_bodies import GenerateRequest  # noqa: E402
from sglang.server.request_fields import GENERATE_SERVED  # noqa: E402
from sglang.server_args import ServerArgs  # noqa: E402

SERVER_ARGS = (
    "--context-length", "128",
    "--max-total-tokens", "1024",
    "--max-running-requests", "8",
    "--enable-metrics",
)  # fmt: skip
REQUEST_TIMEOUT_S = 120  # a hang fails here; the slowest legitimate request takes seconds
EXAMPLES = {"positive": 25, "negative": 15, "engine": 20}
REFERENCE = {"text": "The capital of France is", "sampling_params": {"max_new_tokens": 8,
             "temperature": 0}}  # fmt: skip

# Routes that generate, and the field of each that carries the prompt: "engine" mode pins that
# field to valid prompts and fuzzes the rest of the body within the schema.
VALID_PROMPTS = {
    "/generate": ("text", ["The capital of France is", "Hi"]),
    "/v1/completions": ("prompt", ["Once upon a time", "1, 2, 3,"]),
    "/v1/chat/completions": ("messages", [[{"role": "user", "content": "Say hi."}]]),
}


def app_operations() -> list[tuple[str, str, bool]]:
    """(METHOD, path, takes input) of every operation, from the app itself, so that the test
    ids exist at collection; an operation without input has no schema-violating requests."""
    schema = create_app(ServerArgs(enable_metrics=True)).openapi()
    return sorted(
        (m.upper(), p, bool(op.get("requestBody") or op.get("parameters")))
        for p, ops in schema["paths"].items()
        for m, op in ops.items()
    )


OPERATIONS = [(m, p) for m, p, _ in app_operations()]
FUZZ_CASES = [
    pytest.param(m, p, mode, id=f"{m} {p} {mode}")
    for m, p, takes_input in app_operations()
    for mode in ("positive", "negative")
    if mode == "positive" or takes_input
]


@pytest.fixture(scope="module")
def fuzz_server():
    s = ServerProcess(*SERVER_ARGS)
    s.reference = httpx.post(s.base_url + "/generate", json=REFERENCE, timeout=60).json()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def live_schema(fuzz_server) -> dict:
    return httpx.get(fuzz_server.base_url + "/openapi.json", timeout=30).json()


def engine_schema(schema: dict) -> dict:
    """The schema with each generating route's prompt pinned to valid prompts, lengths that fit
    the 128-token context, and only typed top-level fields, so that most generated bodies reach
    the scheduler with whatever else the schema allows."""
    schema = copy.deepcopy(schema)
    for path, (field, prompts) in VALID_PROMPTS.items():
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        target = body["schema"]
        if "$ref" in target:
            target = schema["components"]["schemas"][target["$ref"].rsplit("/", 1)[1]]
        target["properties"] = {
            k: v
            for k, v in target["properties"].items()
            if k != "input_ids" and {"type", "anyOf", "$ref", "enum"} & set(v)
        }
        target["properties"][field] = {"enum": prompts}
        target["required"] = sorted({*target.get("required", ()), field})
        target["additionalProperties"] = False
    generate = schema["paths"]["/generate"]["post"]["requestBody"]["content"]["application/json"]
    props = generate["schema"]["properties"]
    one = props["sampling_params"]["anyOf"][0]  # the object form, with its length given
    props["sampling_params"] = {**one, "required": ["max_new_tokens"]}
    generate["schema"]["required"].append("sampling_params")
    cap_lengths(schema)
    return schema


LENGTH_CAPS = {  # field -> (minimum, maximum) in engine mode
    "n": (1, 4),  # n copies (up to 128) of long answers: a test of patience, not robustness
    "max_new_tokens": (0, 16),
    "max_tokens": (1, 16),
    "max_completion_tokens": (1, 16),
}


def cap_lengths(node) -> None:
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            for name, (low, high) in LENGTH_CAPS.items():
                if name in props:
                    props[name] = {"type": "integer", "minimum": low, "maximum": high}
        for value in node.values():
            cap_lengths(value)
    elif isinstance(node, list):
        for value in node:
            cap_lengths(value)


def check_response(case, response) -> None:
    where = f"{case.method} {case.path}\n{case.as_curl_command()}"
    assert response.status_code < 500, f"{response.status_code} {response.text[:500]}\n{where}"
    if 400 <= response.status_code < 500:
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            pytest.fail(f"a {response.status_code} without an error body: {response.text}\n{where}")
        assert isinstance(error.get("message"), str) and error["message"], where


def fuzz(operation, mode: GenerationMode, base_url: str, examples: int) -> dict[int, int]:
    """Run `examples` generated cases against the server; returns the count of each status."""
    statuses: dict[int, int] = {}

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        response = case.call(base_url=base_url, timeout=REQUEST_TIMEOUT_S)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        check_response(case, response)

    run()
    return statuses


def test_schema_describes_every_route(fuzz_server, live_schema):
    served = sorted((m.upper(), p) for p, ops in live_schema["paths"].items() for m in ops)
    assert served == OPERATIONS
    bodiless = {("POST", "/flush_cache")}
    for method, path in OPERATIONS:
        op = live_schema["paths"][path][method.lower()]
        if method == "POST" and (method, path) not in bodiless:
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert body.get("properties") or body.get("$ref"), f"{method} {path}: no body schema"
    generate = live_schema["paths"]["/generate"]["post"]["requestBody"]["content"]
    params = generate["application/json"]["schema"]["properties"]["sampling_params"]["anyOf"][0]
    assert {"max_new_tokens", "temperature", "stop", "json_schema"} <= set(params["properties"])
    # the documented /generate fields are the ones the route serves
    assert set(GenerateRequest.model_fields) == GENERATE_SERVED


@pytest.mark.parametrize("method,path,mode", FUZZ_CASES)
def test_route_survives_fuzzing(fuzz_server, live_schema, method, path, mode):
    schema = schemathesis.openapi.from_dict(live_schema)
    operation = schema[path][method]
    fuzz(operation, GenerationMode(mode), fuzz_server.base_url, EXAMPLES[mode])


@pytest.mark.parametrize("path", sorted(VALID_PROMPTS))
def test_generation_survives_fuzzed_fields(fuzz_server, live_schema, path):
    schema = schemathesis.openapi.from_dict(engine_schema(live_schema))
    statuses = fuzz(schema[path]["POST"], GenerationMode.POSITIVE, fuzz_server.base_url,
                    EXAMPLES["engine"])  # fmt: skip
    print(f"{path}: statuses {statuses}")  # shown with -s: how many reached the engine
    assert statuses.get(200, 0) > 0, f"no generated body reached the engine: {statuses}"


def server_stats(base_url: str) -> dict:
    return httpx.get(base_url + "/get_server_info", timeout=30).json()["scheduler"]


def test_server_healthy_after_fuzzing(fuzz_server):
    url = fuzz_server.base_url
    assert httpx.get(url + "/health", timeout=10).status_code == 200
    # aborted requests leave the scheduler within a step or two
    assert wait_until(lambda: not (s := server_stats(url))["running"] + s["waiting"], 30)
    stats = server_stats(url)
    assert stats["kv_free"] + stats["kv_cached"] == stats["kv_total"], stats
    assert httpx.post(url + "/flush_cache", timeout=30).status_code == 200
    stats = server_stats(url)
    assert stats["kv_free"] == stats["kv_total"], stats
    # after the flush the prompt is prefilled whole again, as it was for the reference
    again = httpx.post(url + "/generate", json=REFERENCE, timeout=60).json()
    assert again["text"] == fuzz_server.reference["text"] and again["text"]
    assert again["meta_info"]["completion_tokens"] == 8


# --- regressions: each of these was a 5xx, a hang or a dead scheduler ------------------------
FOUR = {"max_new_tokens": 4}  # so that only the field under test is wrong (context 128)
REGRESSIONS = [
    # a list where an object belongs: AttributeError in SamplingParams.normalize (500)
    ("/generate", {"text": "hi", "sampling_params": {**FOUR, "logit_bias": [1, 2]}}, "logit_bias"),
    # int32 overflow in the sampler's top_k tensor killed the scheduler; every later request hung
    ("/generate", {"text": "hi", "sampling_params": {**FOUR, "top_k": 10**21}}, "top_k"),
    # torch.Generator overflow in the scheduler
    ("/generate", {"text": "hi", "sampling_params": {**FOUR, "sampling_seed": 10**23}},
     "sampling_seed"),
    # topk(k > vocab) in the scheduler
    ("/generate", {"text": "hi", "sampling_params": FOUR, "return_logprob": True,
                   "top_logprobs_num": 10**8},
     "top_logprobs_num"),  # fmt: skip
    # int("x") outside the route's error handling (500)
    ("/generate", {"text": "hi", "sampling_params": FOUR, "return_logprob": True,
                   "top_logprobs_num": "x"},
     "top_logprobs_num"),  # fmt: skip
    # iterating an int (500)
    ("/generate", {"input_ids": [[1], 2], "sampling_params": FOUR}, "input_ids"),
    # NaN/Infinity are accepted by Python's JSON parser; NaN sampled garbage, not an error
    ("/generate", '{"text": "hi", "sampling_params": {"max_new_tokens": 4, "temperature": NaN}}',
     "temperature"),
    ("/generate",
     '{"text": "hi", "sampling_params": {"max_new_tokens": 4, "logit_bias": {"5": Infinity}}}',
     "logit_bias"),  # fmt: skip
    ("/generate", {"text": "hi", "sampling_params": {"max_new_tokens": 4.5}}, "max_new_tokens"),
    # n = 1e8 built 1e8 requests in the event loop: the whole server stopped answering
    ("/v1/completions", {"prompt": "hi", "max_tokens": 2, "n": 10**8}, "n"),
    ("/v1/chat/completions",
     {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "n": 10**8}, "n"),
]  # fmt: skip


@pytest.mark.parametrize("path,body,field", REGRESSIONS, ids=[r[2] for r in REGRESSIONS])
def test_found_by_fuzzing_is_a_400(fuzz_server, path, body, field):
    content = body if isinstance(body, str) else json.dumps(body)
    r = httpx.post(
        fuzz_server.base_url + path,
        content=content,
        headers={"content-type": "application/json"},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]["message"]
    assert httpx.get(fuzz_server.base_url + "/health", timeout=10).status_code == 200


@pytest.mark.parametrize("path", ["/tokenize", "/v1/completions", "/abort_request"])
def test_unreadable_body_is_an_openai_error(fuzz_server, path):
    """Not UTF-8: FastAPI's own 400 came as {"detail": ...}, not an OpenAI error body."""
    r = httpx.post(
        fuzz_server.base_url + path,
        content=b"\x07F\xff",
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 400
    assert r.json()["error"]["message"]


def test_unknown_route_is_an_openai_error(fuzz_server):
    r = httpx.get(fuzz_server.base_url + "/v1/nothing-here", timeout=30)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_big_top_k_means_all_tokens(fuzz_server):
    body = {"text": "hi", "sampling_params": {"top_k": 10**8, "max_new_tokens": 4,
                                              "sampling_seed": 1}}  # fmt: skip
    r = httpx.post(fuzz_server.base_url + "/generate", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["meta_info"]["completion_tokens"] == 4


# --- last: these two end the module's server -------------------------------------------------
def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def schedulers_of(pid: int) -> list[int]:
    """The server's spawned children that run the scheduler (not multiprocessing's tracker)."""
    found = []
    for child in children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"spawn_main" in f.read() and alive(child):
                    found.append(child)
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_dead_scheduler_is_a_503_not_a_hang(fuzz_server):
    """A scheduler that dies (here: killed) fails pending and later requests at once."""
    url = fuzz_server.base_url
    schedulers = schedulers_of(fuzz_server.proc.pid)
    assert schedulers, "no scheduler process found"
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        for pid in schedulers:
            os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: client.get(url + "/health").status_code == 503, 10)
        r = client.post(url + "/generate", json=REFERENCE)
        assert r.status_code == 503 and "scheduler" in r.json()["error"]["message"]
        r = client.get(url + "/get_server_info")
        assert r.status_code == 503


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        found += kids
        todo += kids
    return found


def test_scheduler_exits_with_its_server():
    """A killed server (SIGKILL: no shutdown) leaves no process of it after 5 s."""
    s = ServerProcess("--context-length", "128", "--max-total-tokens", "1024")
    try:
        schedulers = schedulers_of(s.proc.pid)
        assert schedulers
        left = descendants(s.proc.pid)
        s.proc.kill()
        s.proc.wait(timeout=10)
        assert wait_until(lambda: not any(alive(p) for p in left), 5), [p for p in left if alive(p)]
    finally:
        s.stop()


def test_scheduler_exits_when_its_server_dies_during_startup():
    """SIGKILL while the scheduler is still loading the model: it does not load on alone."""
    port = free_port()
    cmd = [sys.executable, "-m", "sglang.launch_server", "--port", str(port), "--device", "xeon",
           "--context-length", "128", "--max-total-tokens", "1024"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: schedulers_of(proc.pid), 60), "no scheduler was spawned"
        left = descendants(proc.pid)
        proc.kill()
        proc.wait(timeout=10)
        assert wait_until(lambda: not any(alive(p) for p in left), 5), [p for p in left if alive(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
