"""Time the README's steps as written: serve ready, the curl, the Python client example, the
Engine example (issue 12: each within 10 s on the 2-core machine).

    python benchmarks/readme_timing.py [--runs 3] [--sglang .venv/bin/sglang] [--port 30000]
                                       [--cold]

The commands are read from README.md's code blocks, not copied here: the serve command (the
part of the first command after `ci/install.sh &&`), the `curl` block (run by bash), and the
two Python blocks (the OpenAI client one, then the `sglang.Engine` one, each run as a file by
the interpreter beside the sglang executable). `--port` rewrites 30000 in every one of them
(the machine may be shared); `--cold` gives every run's server, and separately its Engine
example, an empty GGUF metadata cache ($SGLANG_CACHE_DIR), as on a fresh machine. Per run it prints each step's seconds and the CPU
seconds its processes used (serve: the server's process group at /health, the scheduler
included; the clients and the Engine example: their processes and children); at the end,
best and median per step, with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = ("serve_ready", "curl", "python_client", "engine_example")
CPU: dict[str, float] = {}  # CPU seconds of the last run's steps (all their processes)


def readme_blocks() -> list[tuple[str, str]]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S)


def readme_commands(port: int) -> dict[str, str]:
    blocks = [(lang, body.replace("30000", str(port))) for lang, body in readme_blocks()]
    serve = next(b for lang, b in blocks if lang == "bash" and "sglang serve" in b)
    serve = serve.strip().split("&&", 1)[-1].strip()
    if port != 30000:  # the serve command relies on the default port
        serve += f" --port {port}"
    curl = next(b for lang, b in blocks if lang == "bash" and b.lstrip().startswith("curl"))
    client = next(b for lang, b in blocks if lang == "python" and "openai" in b)
    engine = next(b for lang, b in blocks if lang == "python" and "sglang.Engine" in b)
    return {"serve": serve, "curl": curl, "python_client": client, "engine_example": engine}


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def wait_health(port: int, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError("the server did not become healthy")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields[2]: pgrp; [11], [12]: utime, stime
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def timed(cmd: list[str], env: dict, label: str) -> float:
    start, cpu = time.perf_counter(), children_cpu()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    seconds = time.perf_counter() - start
    CPU[label] = children_cpu() - cpu
    if out.returncode != 0:
        raise RuntimeError(f"{label} failed ({out.returncode}): {out.stderr[-2000:]}")
    print(f"--- {label} output:\n{out.stdout.strip()[-600:]}", flush=True)
    return seconds


def one_run(
    cmds: dict[str, str], sglang: str, port: int, env: dict, tmp: str, engine_env: dict
) -> dict:
    python = os.path.join(os.path.dirname(os.path.abspath(sglang)), "python")
    python = python if os.path.exists(python) else sys.executable
    serve = cmds["serve"].replace(".venv/bin/sglang", sglang)
    times = {}
    log = open(os.path.join(tmp, "server.log"), "w+")  # noqa: SIM115 - read back below
    start = time.perf_counter()
    server = subprocess.Popen(
        serve, shell=True, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_health(port, server)
        times["serve_ready"] = time.perf_counter() - start
        CPU["serve_ready"] = group_cpu(server.pid)
        times["curl"] = timed(["bash", "-c", cmds["curl"]], env, "curl")
        client = os.path.join(tmp, "client.py")
        with open(client, "w") as f:
            f.write(cmds["python_client"])
        times["python_client"] = timed([python, client], env, "python client")
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
        log.seek(0)
        err = log.read()
        log.close()
    startup = [ln for ln in err.splitlines() if " s)" in ln or "ready" in ln.lower()]
    print("--- server log (timed lines):\n" + "\n".join(startup[-12:]), flush=True)
    engine = os.path.join(tmp, "engine_example.py")
    with open(engine, "w") as f:
        f.write(cmds["engine_example"])
    times["engine_example"] = timed([python, engine], engine_env, "Engine example")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sglang", default=".venv/bin/sglang", help="the sglang executable")
    parser.add_argument("--port", type=int, default=30000)
    parser.add_argument("--cold", action="store_true", help="an empty metadata cache per run")
    args = parser.parse_args()
    sglang = args.sglang
    if not os.path.exists(os.path.join(ROOT, sglang)) and not os.path.exists(sglang):
        sglang = shutil.which("sglang") or sglang
    cmds = readme_commands(args.port)
    print(f"serve command: {cmds['serve']}  (sglang: {sglang})")
    results: dict[str, list[float]] = {s: [] for s in STEPS}
    load_before = loadavg()
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            env, engine_env = dict(os.environ), dict(os.environ)
            if args.cold:  # the server's cache, and another for the Engine example
                env["SGLANG_CACHE_DIR"] = os.path.join(tmp, "cache")
                engine_env["SGLANG_CACHE_DIR"] = os.path.join(tmp, "engine_cache")
            times = one_run(cmds, sglang, args.port, env, tmp, engine_env)
        print(f"run {run + 1}: " + "  ".join(f"{k} {v:.2f} s" for k, v in times.items()))
        print("  cpu seconds: " + "  ".join(f"{k} {v:.1f}" for k, v in CPU.items()))
        for k, v in times.items():
            results[k].append(v)
    print(f"load average before: {load_before}; after: {loadavg()}; runs: {args.runs}")
    for step in STEPS:
        values = results[step]
        print(f"{step:16s} best {min(values):6.2f} s   median {statistics.median(values):6.2f} s")


if __name__ == "__main__":
    main()
