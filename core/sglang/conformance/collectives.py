"""Communicator conformance: a backend's collectives across real processes.

`run_collectives(backend)` starts `WORLD_SIZE` fresh processes (rendezvous at a file:// URL).
They come from a fork server that has imported torch and this module and nothing else (no
device touched, no backend imported), so the second backend's ranks start in a fraction of a
second instead of paying torch's import again; where there is no fork server, they spawn.
Each rank loads only the backend under test, creates its runtime and communicator through
the contract's hooks (rank r on device r), and runs every check in `CHECKS` for every dtype
in `DTYPES`. Every rank draws its inputs from a seed derived from the case id and its rank,
so each rank can compute the expected result of a collective, in float64, from all ranks'
inputs; the rank compares its own output and sends the verdict back over a pipe.

A case passes when every rank's output passes. Reductions use the ALLCLOSE metric with the
dtype's tolerance (one rounding of a sum in the dtype); gathers, broadcasts, send/recv,
all_to_all and max move values unchanged and use EXACT. A child that hangs or dies cannot hang the suite: the
parent waits `TIMEOUT_S` at most, then kills what is left and fails the unanswered cases.

Devices: rank r uses device index r. A backend that knows its device count states it in its
probe's details (`device_count`); with fewer devices than ranks the checks are skipped.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from multiprocessing import connection as mp_connection
from typing import Any

import torch
import torch.multiprocessing as mp

from sglang.backend.discovery import BUILTIN_REFERENCE, LoadedBackend, load_backend
from sglang.backend.hookspecs import ENTRY_POINT_GROUP
from sglang.backend.registry import KernelRegistry
from sglang.conformance.collective_checks import (  # noqa: F401 (cases: the suite's)
    CHECKS,
    DTYPES,
    CollectiveCheck,
    call,
    cases,
    expected,
    rank_input,
)
from sglang.conformance.compare import compare_outputs
from sglang.conformance.runner import FAILED, PASSED, SKIPPED, XFAILED, CheckResult
from sglang.ops.spec import ALLCLOSE, EXACT, Tolerance, dtype_key

WORLD_SIZE = 2
TIMEOUT_S = 60.0  # the whole run; a healthy one takes a few seconds
# The sum of two values rounded once to the dtype: half an ulp, relative.
TOLERANCES = {
    torch.float32: Tolerance(atol=1e-6, rtol=1e-6),
    torch.bfloat16: Tolerance(atol=1e-2, rtol=1.6e-2),
}


def load_one(name: str) -> LoadedBackend:
    """Load just the backend `name` (as discovery would), without importing the others."""
    registry = KernelRegistry()
    if name == "reference":
        load = lambda: importlib.import_module(BUILTIN_REFERENCE)  # noqa: E731
        return load_backend(name, load, BUILTIN_REFERENCE, "sglang", None, registry)
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return load_backend(name, ep.load, ep.value, None, None, registry)
    raise LookupError(f"no backend {name!r} under the entry-point group {ENTRY_POINT_GROUP}")


def describe(comm: Any) -> str:
    transport = getattr(comm, "transport", None)
    return f"{type(comm).__name__}({transport})" if transport else type(comm).__name__


def worker(
    backend: str,
    rank: int,
    world: int,
    init_method: str,
    work: list[tuple[int, str, float, float]],
    conn: Any,
) -> None:
    """One rank. `work` holds (index into CHECKS, dtype name, atol, rtol). Messages sent over
    `conn` (each written before the next collective starts, so a crash loses none):
    ("ready", communicator), ("result", case_id, ok, error, detail, seconds),
    ("setup_error", traceback), ("done",)."""
    torch.set_num_threads(1)
    try:
        b = load_one(backend)
        if not b.available:
            raise RuntimeError(f"backend {backend} is unavailable here: {b.why_unavailable()}")
        runtime = b.create_runtime(device_index=rank)
        comm = b.create_communicator(
            rank=rank, world_size=world, init_method=init_method, device_index=rank
        )
    except BaseException:
        conn.send(("setup_error", traceback.format_exc()))
        os._exit(1)
    conn.send(("ready", describe(comm)))
    for index, dtype_name, atol, rtol in work:
        check, dtype = CHECKS[index], getattr(torch, dtype_name)
        case_id = check.case_id(dtype)
        start = time.perf_counter()
        inputs = [rank_input(check, dtype, r, world) for r in range(world)]
        metric = EXACT if check.exact else ALLCLOSE
        try:
            want = expected(check, inputs, rank)
            mine = inputs[rank].clone().to(runtime.device)  # collectives work in place
            got = call(comm, check, mine, rank, world)
            runtime.synchronize()
            if not isinstance(got, torch.Tensor) or got.dtype != dtype:
                what = got.dtype if isinstance(got, torch.Tensor) else type(got).__name__
                ok, err, detail = False, None, f"returned {what}, expected a {dtype} tensor"
            else:
                tol = Tolerance(atol=atol, rtol=rtol)
                ok, err, detail = compare_outputs(metric, [want], [got.detach().cpu()], tol)
        except Exception:
            ok, err, detail = False, None, "collective raised:\n" + traceback.format_exc(limit=6)
        conn.send(("result", case_id, ok, err, detail, time.perf_counter() - start))
    try:
        comm.close()
    finally:
        conn.send(("done",))
        os._exit(0)  # at once: torch's interpreter teardown costs a second


# --- the parent side -----------------------------------------------------------------------
@dataclass
class RankReport:
    """What the parent learnt about one rank besides its verdicts."""

    communicator: str | None = None
    setup_error: str | None = None
    done: bool = False
    exit_note: str | None = None  # why it stopped early: killed at the deadline, or exited


def run_collectives(
    backend: LoadedBackend, world: int = WORLD_SIZE, timeout_s: float = TIMEOUT_S
) -> dict[str, CheckResult]:
    """Every (check, dtype) case of `backend`, keyed by case id."""
    caps = backend.capabilities
    manifest = backend.conformance_manifest()
    out: dict[str, CheckResult] = {}
    work: list[tuple[int, str, float, float]] = []
    devices = backend.probe.details.get("device_count") if backend.probe else None
    for index, check in enumerate(CHECKS):
        for dtype in DTYPES:
            result = _new_result(backend.name, check, dtype)
            missing = caps.missing(result.capabilities) if caps is not None else []
            if missing:
                result.reason = "missing capability: " + ", ".join(missing)
            elif devices is not None and devices < world:
                result.reason = f"needs {world} devices, the probe found {devices}"
            else:
                tol = TOLERANCES[dtype]
                override = manifest.tolerance_override(result.id)
                if override is not None and not check.exact:
                    tol = Tolerance(
                        atol=tol.atol if override.atol is None else override.atol,
                        rtol=tol.rtol if override.rtol is None else override.rtol,
                    )
                    result.tolerance, result.tolerance_reason = tol.to_json(), override.reason
                work.append((index, dtype_key(dtype), tol.atol, tol.rtol))
            out[result.id] = result
    if work:
        _run_ranks(backend, world, timeout_s, work, out)
        for index, dtype_name, _, _ in work:
            result = out[CHECKS[index].case_id(getattr(torch, dtype_name))]
            _apply_expected_failure(result, manifest)
    return out


def _new_result(backend: str, check: CollectiveCheck, dtype: torch.dtype) -> CheckResult:
    return CheckResult(
        id=check.case_id(dtype),
        op=check.op,
        backend=backend,
        status=SKIPPED,
        dtype=dtype_key(dtype),
        metric=EXACT if check.exact else ALLCLOSE,
        tolerance={} if check.exact else TOLERANCES[dtype].to_json(),
        capabilities=[f"dtype:{dtype_key(dtype)}", f"collective:{check.collective}"],
    )


def _run_ranks(
    backend: LoadedBackend,
    world: int,
    timeout_s: float,
    work: list[tuple[int, str, float, float]],
    out: dict[str, CheckResult],
) -> None:
    ctx = _context()
    rendezvous = tempfile.mkdtemp(prefix="sglang-comm-")
    init_method = "file://" + os.path.join(rendezvous, "store")
    pipes = [ctx.Pipe(duplex=False) for _ in range(world)]
    procs = [
        ctx.Process(
            target=worker,
            args=(backend.name, rank, world, init_method, work, pipes[rank][1]),
            daemon=True,
        )
        for rank in range(world)
    ]
    reports = [RankReport() for _ in range(world)]
    verdicts: dict[str, list[tuple]] = {}
    try:
        for p, (_, writer) in zip(procs, pipes):
            p.start()
            writer.close()  # the child holds the only writer: its exit means EOF here
        _collect(procs, [r for r, _ in pipes], reports, verdicts, timeout_s)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(timeout=5)
        for reader, _ in pipes:
            reader.close()
        shutil.rmtree(rendezvous, ignore_errors=True)
    for index, dtype_name, _, _ in work:
        case_id = CHECKS[index].case_id(getattr(torch, dtype_name))
        _judge(out[case_id], verdicts.get(case_id, []), reports, world)


def _context() -> Any:
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", __name__])
    return ctx


def _collect(
    procs: list[Any],
    readers: list[Any],
    reports: list[RankReport],
    verdicts: dict[str, list[tuple]],
    timeout_s: float,
) -> None:
    """Read every rank's messages until each has finished or closed its pipe (exited), or the
    deadline passes."""
    deadline = time.monotonic() + timeout_s
    open_ = {reader: rank for rank, reader in enumerate(readers)}
    while open_:
        left = deadline - time.monotonic()
        ready = mp_connection.wait(list(open_), timeout=max(left, 0))
        if not ready:
            for rank in open_.values():
                reports[rank].exit_note = f"rank {rank} did not finish within {timeout_s:.0f} s"
            return
        for reader in ready:
            rank = open_[reader]
            try:
                msg = reader.recv()
            except (EOFError, OSError):
                del open_[reader]
                if not reports[rank].done:
                    procs[rank].join(timeout=5)
                    reports[rank].exit_note = f"rank {rank} exited with code {procs[rank].exitcode}"
                continue
            kind = msg[0]
            if kind == "ready":
                reports[rank].communicator = msg[1]
            elif kind == "setup_error":
                reports[rank].setup_error = msg[1]
            elif kind == "result":
                _, case_id, ok, err, detail, seconds = msg
                verdicts.setdefault(case_id, []).append((rank, ok, err, detail, seconds))
            elif kind == "done":
                reports[rank].done = True


def _judge(result: CheckResult, verdicts: list, reports: list[RankReport], world: int) -> None:
    result.kernel = next((r.communicator for r in reports if r.communicator), None)
    by_rank = {rank: (ok, err, detail, s) for rank, ok, err, detail, s in verdicts}
    problems = []
    for rank in range(world):
        if rank in by_rank:
            ok, _, detail, _ = by_rank[rank]
            if not ok:
                problems.append(f"rank {rank}: {detail}")
            continue
        report = reports[rank]
        if report.setup_error:
            problems.append(f"rank {rank} failed to set up:\n{report.setup_error}")
        else:
            problems.append(report.exit_note or f"rank {rank} sent no result")
    errors = [v[1] for v in by_rank.values() if v[1] is not None]
    result.error = max(errors) if errors else None
    result.duration_s = round(max((v[3] for v in by_rank.values()), default=0.0), 4)
    if problems:
        result.status, result.reason = FAILED, "; ".join(problems)
    else:
        result.status = PASSED
        result.reason = next(iter(by_rank.values()))[2] if by_rank else ""


def _apply_expected_failure(result: CheckResult, manifest: Any) -> None:
    entry = manifest.expected_failure(result.id)
    if entry is None:
        return
    if result.status == PASSED:
        result.status = FAILED
        result.reason = f"passed but listed as an expected failure ({entry.reason})"
    elif result.status == FAILED:
        result.status, result.reason = XFAILED, f"{entry.reason} | {result.reason}"
