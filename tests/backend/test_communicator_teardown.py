"""ProcessGroupCommunicator's teardown: after `close`, no gloo thread is left in the process.

A gloo worker thread that still runs at interpreter exit can abort the process after all its
work is done ("terminate called without an active exception", exit -6): it drops a finished
collective's tensors, which needs the GIL, which a finalizing interpreter never gives back.
`close` must therefore leave no reference to a process group behind, its subgroups' included,
even when `torch.distributed.nn` is imported after the group exists (as transformers does while
a model loads: that module's functions take the WORLD group as a default argument).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="thread names come from /proc (Linux)"
)


def _thread_names() -> list[str]:
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            names.append(Path(f"/proc/self/task/{tid}/comm").read_text().strip())
        except OSError:  # the thread ended meanwhile
            pass
    return names


def _rank(rank: int, init_method: str, queue) -> None:
    import torch
    from sglang.backend import ProcessGroupCommunicator

    comm = ProcessGroupCommunicator("gloo", rank, 2, init_method)
    sub = comm.subgroup([0, 1])
    import torch.distributed.nn  # noqa: F401  (after the group exists, as transformers does)

    x = torch.full((4, 3), float(rank + 1))
    gathered = comm.all_gather(x)
    summed = sub.all_reduce(x.clone())
    during = [n for n in _thread_names() if "gloo" in n]
    comm.close()
    after = [n for n in _thread_names() if "gloo" in n]
    queue.put((rank, gathered.sum().item(), summed.sum().item(), during, after))


def test_close_joins_every_gloo_thread(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    init_method = "file://" + str(tmp_path / "rendezvous")
    procs = [ctx.Process(target=_rank, args=(r, init_method, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = sorted(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0, 0]
    for rank, gathered, summed, during, after in results:
        assert gathered == 12 * 1 + 12 * 2 and summed == 12 * 3  # the collectives ran
        assert during, f"rank {rank}: no gloo thread seen while the group was up"
        assert after == [], f"rank {rank}: gloo threads left after close: {after}"
