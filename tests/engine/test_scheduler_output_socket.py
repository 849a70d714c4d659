"""The scheduler's output socket connects before the frontend binds its address (the frontend
starts once the scheduler is ready). ZeroMQ then retries the connect every RECONNECT_IVL, 100
ms by default: a request sent right after an Engine started had all its outputs held until
the next retry (its 16 chunks arrived together, ~115 ms late). Outputs sent once the frontend
binds must arrive at once."""

from __future__ import annotations

import os
import time

import zmq
from sglang.engine.scheduler_process import output_socket


def test_outputs_reach_a_frontend_that_binds_after_the_connect(tmp_path):
    ctx = zmq.Context()
    ctx.setsockopt(zmq.LINGER, 0)  # a failed check must not leave ctx.term() waiting
    try:
        for trial in range(3):
            address = f"ipc://{os.path.join(tmp_path, f'out{trial}')}"
            push = output_socket(ctx, address)  # the scheduler, at its start: nothing bound
            time.sleep(0.01)  # its first connect has failed
            pull = ctx.socket(zmq.PULL)
            pull.bind(address)  # the frontend, once the scheduler is ready
            sent = time.monotonic()
            push.send(b"first outputs")
            assert pull.poll(2000), "nothing arrived"
            assert pull.recv() == b"first outputs"
            # with the default 100 ms retry the message waits ~90 ms here
            assert time.monotonic() - sent < 0.05, f"trial {trial}: held for a reconnect"
    finally:
        ctx.destroy(linger=0)
