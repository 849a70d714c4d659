"""The HTTP frontend's own host time for one streaming /generate (issue 20), in process.

    python benchmarks/ttft_frontend.py [--tiny DIR] [--requests 2000] [--rounds 5]

Builds the real app (routes, middleware, ServerState, TokenizerManager) around a stand-in
scheduler: the manager's socket to the scheduler is replaced by one that records when the
request is sent and answers at once with the first token, as the scheduler's output would
arrive. Then drives the ASGI app directly (no sockets, no uvicorn) with a streaming /generate
of a 16-token prompt, one request at a time, and prints the medians of:

  to the scheduler    ASGI call -> the request handed to the socket (the critical path before
                      the scheduler can start: routing, body, checks, admission)
  first chunk         the output received -> the first SSE body chunk handed to the server
  whole request       ASGI call -> the response complete (with the rest of the stream)

These are the frontend's pure Python costs; the process hops and the server's HTTP parse are
not in them (benchmarks/ttft_overhead.py measures the whole path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def build(model: str):
    from sglang.engine.io import SchedulerInfo
    from sglang.engine.tokenizer_manager import TokenizerManager
    from sglang.model_loader import load_tokenizer
    from sglang.scheduler.records import StepOutput
    from sglang.scheduler.req import FinishReason
    from sglang.server.app import create_app
    from sglang.server.state import ServerState
    from sglang.server_args import ServerArgs
    from ttft_overhead import write_tiny_llama

    write_tiny_llama(model)
    tokenizer = load_tokenizer(model)
    args = ServerArgs(model_path=model)
    info = SchedulerInfo(
        backend="stand-in",
        device="cpu",
        kernels={},
        architecture="LlamaForCausalLM",
        dtype="float32",
        quantization=None,
        quantization_layers=None,
        context_len=2048,
        vocab_size=len(tokenizer),
        max_total_tokens=1 << 16,
        max_running_requests=64,
        chunked_prefill_size=-1,
        eos_token_ids=[tokenizer.eos_token_id],
        settings=args,
    )
    ipc = f"ipc:///tmp/ttft-frontend-{os.getpid()}"
    manager = TokenizerManager(tokenizer, ipc + "-in", ipc + "-out", info)
    times: dict[str, int] = {}

    class StandIn:
        """The scheduler's end of the socket: each request is answered with `out_len` steps of
        one token, the first at once (the outputs go where the receive loop puts them)."""

        def __init__(self, out_len: int) -> None:
            self.out_len = out_len

        def _answer(self, rid: str, prompt_len: int, i: int) -> None:
            state = manager.states.get(rid)
            if state is None:
                return
            last = i == self.out_len - 1
            out = StepOutput(
                rid,
                [1000 + i],
                FinishReason("length", self.out_len) if last else None,
                prompt_tokens=prompt_len,
                completion_tokens=i + 1,
            )
            out = pickle.loads(pickle.dumps([out]))[0]  # as it arrives
            if i == 0:
                times["received"] = time.perf_counter_ns()
            state.queue.put_nowait(out)
            if not last:
                asyncio.get_running_loop().call_soon(self._answer, rid, prompt_len, i + 1)

        def _take(self, data) -> None:
            msg = pickle.loads(data)
            if hasattr(msg, "prompt_ids"):
                times["sent"] = time.perf_counter_ns()
                asyncio.get_running_loop().call_soon(self._answer, msg.rid, len(msg.prompt_ids), 0)

        def send(self, data, *a, **k) -> asyncio.Future:
            """As zmq.asyncio's: sent at once, a done future."""
            self._take(data)
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

        def close(self, linger=None) -> None:
            pass

    app = create_app(args)
    state = ServerState(args, manager, info, model)
    app.state.server = state
    return app, manager, StandIn, times


async def one_request(app, body: bytes, times: dict) -> tuple[int, int, int, int]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/generate",
        "raw_path": b"/generate",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 30000),
        "state": {},
    }
    done = asyncio.Event()
    sent_body = [False]

    async def receive():
        if not sent_body[0]:
            sent_body[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    first = [0]

    async def send(message):
        if message["type"] == "http.response.body" and message.get("body") and not first[0]:
            first[0] = time.perf_counter_ns()
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    start = time.perf_counter_ns()
    await app(scope, receive, send)
    end = time.perf_counter_ns()
    return start, first[0], end, 0


async def run(app, manager, times, n: int, out_len: int) -> dict[str, list[float]]:
    import random

    rng = random.Random(0)
    manager.start()
    res: dict[str, list[float]] = {"to the scheduler": [], "first chunk": [], "whole request": []}
    for _ in range(n):
        ids = [rng.randrange(3, 10000) for _ in range(16)]
        payload = {
            "input_ids": ids,
            "sampling_params": {"temperature": 0.0, "max_new_tokens": out_len, "ignore_eos": True},
            "stream": True,
        }
        times.clear()
        start, first, end, _ = await one_request(app, json.dumps(payload).encode(), times)
        res["to the scheduler"].append((times["sent"] - start) / 1e3)
        res["first chunk"].append((first - times["received"]) / 1e3)
        res["whole request"].append((end - start) / 1e3)
    return res


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tiny", default="/tmp/ttft-tiny-llama")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--output-len", type=int, default=16)
    args = p.parse_args(argv)
    import logging

    logging.disable(logging.INFO)  # no per-request log lines in the timing
    try:
        import uvloop

        new_loop = uvloop.new_event_loop
    except ImportError:
        new_loop = asyncio.new_event_loop
    app, manager, StandIn, times = build(args.tiny)
    manager.pushes = [StandIn(args.output_len)]
    loop = new_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(run(app, manager, times, 200, args.output_len))  # warm-up
    rounds = []
    for _ in range(args.rounds):
        rounds.append(
            loop.run_until_complete(run(app, manager, times, args.requests, args.output_len))
        )
    print(f"frontend host time per streaming /generate (us), median of {args.requests} requests:")
    for key in rounds[0]:
        meds = [statistics.median(r[key]) for r in rounds]
        print(f"  {key:<20}" + "".join(f"{m:8.1f}" for m in meds) + f"   best {min(meds):.1f}")
    manager.close()


if __name__ == "__main__":
    main()
