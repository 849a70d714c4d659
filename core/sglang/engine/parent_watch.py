"""A child process of the engine (the scheduler, later a rank) exits when its parent dies.

A SIGKILL of the server, or the OOM killer, gives the parent no chance to stop its children;
without this the scheduler would keep its model and KV pool (on a GPU: device memory that
blocks a restart). A daemon thread compares the parent's pid, so it also covers startup
(model loading) and long steps, where the scheduling loop does not run. Not prctl's
PR_SET_PDEATHSIG: that fires when the parent *thread* exits, and an Engine may be made in a
short-lived thread.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading

logger = logging.getLogger(__name__)

POLL_S = 0.5
EXIT_CODE = 70  # EX_SOFTWARE: not a clean shutdown, and not the scheduler's own failure


def exit_with_parent(parent_pid: int | None = None, poll_s: float = POLL_S) -> threading.Thread:
    """Start the watcher. parent_pid defaults to the process that spawned this one (read at
    once: if the parent died before this call, the re-parented pid already differs)."""
    if parent_pid is None:
        parent = multiprocessing.parent_process()
        parent_pid = parent.pid if parent is not None else os.getppid()

    def watch() -> None:
        event = threading.Event()
        while not event.wait(poll_s):
            if os.getppid() != parent_pid:
                logger.warning("the parent process %d is gone; exiting", parent_pid)
                logging.shutdown()
                os._exit(EXIT_CODE)

    thread = threading.Thread(target=watch, name="sglang-parent-watch", daemon=True)
    thread.start()
    return thread
