"""Multi-node serving (--nnodes N --node-rank K --dist-init-addr HOST:PORT, SGLang's flags).

Node 0 runs the server (or Engine) and its share of the ranks; node K > 0 runs only its
ranks (`run_node`: no HTTP server, no scheduler), which join the group at HOST:PORT (rank
0's torch.distributed store) and follow rank 0's batch plans. Beside the ranks' own
collectives, each node K keeps one TCP link to node 0 at HOST:PORT+1 (`NodeLinks`, listened
on before node 0's ranks start): the kernel closes it when node K's process dies, however it
dies, so node 0 sees a lost node even while idle (no collective running), fails requests
with 503 and stops, like a dead local rank; node K exits when the link or one of its ranks
closes, so neither side is left waiting on the other.
"""

from __future__ import annotations

import logging
import socket
import tempfile
import threading
import time

from sglang.engine.preflight import StartupError
from sglang.server_args import ServerArgs

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 600  # how long node K waits for node 0 to listen


def link_address(args: ServerArgs) -> tuple[str, int]:
    host, port = args.dist_init_addr.rsplit(":", 1)
    return host, int(port) + 1


class NodeLink:
    """Node 0's view of node K, in the launcher's list of processes: alive until its link
    closes once connected (not connected yet: still starting)."""

    pid = None

    def __init__(self, node: int) -> None:
        self.node, self.name = node, f"node {node}"
        self.exitcode: int | None = None
        self.exit_note = f"node {node} lost (its link to node 0 closed)"
        self.conn: socket.socket | None = None

    def is_alive(self) -> bool:
        return self.exitcode is None

    def join(self, timeout: float | None = None) -> None:
        pass

    def kill(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def watch(self, conn: socket.socket) -> None:
        self.conn = conn
        try:
            while conn.recv(64):
                pass
        except OSError:
            pass
        self.exitcode = 1
        logger.error("%s", self.exit_note)


class NodeLinks:
    """Node 0's listener: accepts one link per other node (each says its rank first)."""

    def __init__(self, args: ServerArgs) -> None:
        host, port = link_address(args)
        try:
            self.sock = socket.create_server((host, port))
        except OSError as e:
            raise StartupError(f"--dist-init-addr: cannot listen on {host}:{port}: {e}") from None
        self.links = [NodeLink(n) for n in range(1, args.nnodes)]
        threading.Thread(target=self._accept, daemon=True, name="sglang-node-links").start()

    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
                line = conn.makefile("rb").readline().decode().split()
                node = int(line[1]) if len(line) == 2 and line[0] == "node" else 0
            except (OSError, ValueError):
                return
            if not 1 <= node <= len(self.links):
                conn.close()
                continue
            logger.info("node %d linked from %s", node, peer[0])
            link = self.links[node - 1]
            threading.Thread(target=link.watch, args=(conn,), daemon=True).start()

    def is_alive(self) -> bool:
        return all(link.is_alive() for link in self.links)

    def exit_summary(self) -> str:
        return ", ".join(link.exit_note for link in self.links if not link.is_alive())

    def close(self) -> None:
        self.sock.close()
        for link in self.links:
            link.kill()


def connect(args: ServerArgs, ranks) -> socket.socket:
    """Node K's link to node 0, retried until node 0 listens (or a local rank has died)."""
    address, deadline = link_address(args), time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            conn = socket.create_connection(address, timeout=5)
            conn.settimeout(None)
            conn.sendall(f"node {args.node_rank}\n".encode())
            return conn
        except OSError:
            if time.monotonic() > deadline or not ranks.is_alive():
                raise StartupError(
                    f"--dist-init-addr {args.dist_init_addr}: node 0 is not reachable"
                ) from None
            time.sleep(0.5)


def run_node(args: ServerArgs) -> int:
    """Node K > 0: start this node's ranks, link to node 0, serve until either side ends.
    Returns the exit status (0 when node 0 stopped the ranks cleanly)."""
    from sglang.engine.launcher import start_ranks, stop_scheduler, wait_ready
    from sglang.engine.preflight import preflight
    from sglang.engine.rank_process import local_ranks

    args, _ = preflight(args)
    handle = start_ranks(args, tempfile.mkdtemp(prefix="sglang-"), None)
    procs, conn = handle.procs, None
    try:
        conn = connect(args, handle.proc)
        wait_ready(handle)
        ranks = [rank.rank for _, rank in local_ranks(args, "")]
        logger.info("node %d of %d: ranks %s ready, following node 0", args.node_rank,
                    args.nnodes, ranks)  # fmt: skip
        conn.settimeout(0.5)
        while all(p.is_alive() for p in procs):
            try:
                if not conn.recv(64):
                    break
            except TimeoutError:
                pass
        for p in procs:  # node 0 stopping cleanly stops the ranks (and closes the link)
            p.join(5)
        dead = [f"{p.name} (code {p.exitcode})" for p in procs if p.exitcode != 0]
        if dead:
            logger.error("node 0 or a rank is gone: %s", ", ".join(dead))
            return 1
        logger.info("node 0 stopped the ranks")
        return 0
    finally:
        if conn is not None:
            conn.close()
        stop_scheduler(handle, timeout=5)
