"""The README's first commands, as a new user runs them: `sglang serve` with no flags, then the
curl request, the openai-client example and the in-process Engine example, each as written
(only the port differs). Each must finish and answer the question sensibly."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from server_process import free_port

README = Path(__file__).resolve().parents[2] / "README.md"
HANG_GUARD_S = 300  # a reply that never ends (the bug this guards against) fails, not hangs


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def readme_server():
    """`sglang serve` exactly as the README's first command runs it, on a free port."""
    port = free_port()
    log = open(f"/tmp/sglang-readme-server-{port}.log", "w")
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "sglang"), "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, Path(log.name).read_text()[-3000:]
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=60)
    log.close()


def test_readme_curl_answers(readme_server):
    (block,) = [b for b in _blocks("bash") if b.lstrip().startswith("curl")]
    argv = shlex.split(block.replace("\\\n", " ").replace("http://127.0.0.1:30000", readme_server))
    out = subprocess.run(argv + ["-s"], capture_output=True, text=True, timeout=HANG_GUARD_S)
    reply = json.loads(out.stdout)
    assert reply["choices"][0]["finish_reason"] == "stop"  # it ended by itself
    assert "Tokyo" in reply["choices"][0]["message"]["content"]


def test_readme_openai_example(readme_server):
    (block,) = [b for b in _blocks("python") if "openai.OpenAI" in b]
    code = block.replace("http://127.0.0.1:30000", readme_server)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD_S
    )
    assert out.returncode == 0, out.stderr[-3000:]
    answer, _, story = out.stdout.partition("\n")
    assert "Tokyo" in answer
    assert len(story.split()) >= 5  # the streamed completion arrived


def test_readme_engine_example():
    (block,) = [b for b in _blocks("python") if "sglang.Engine()" in b]
    out = subprocess.run(
        [sys.executable, "-c", block], capture_output=True, text=True, timeout=HANG_GUARD_S
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Paris" in out.stdout
