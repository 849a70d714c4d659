"""A failed start is one line (`error: ...`) naming what is wrong and what would fix it, with the
exit code of its class, from `sglang serve`, `python -m sglang.launch_server` and
`sglang.Engine(...)`; the checks that need no model load come before anything heavy."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from sglang.engine.preflight import (
    EXIT_ADDRESS,
    EXIT_DEVICE,
    EXIT_MODEL,
    EXIT_USAGE,
    StartupError,
)


def serve(*args: str, launcher: str = "cli", timeout: float = 120) -> subprocess.CompletedProcess:
    entry = ["sglang.cli.main", "serve"] if launcher == "cli" else ["sglang.launch_server"]
    return subprocess.run(
        [sys.executable, "-m", *entry, "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single line a failed start prints, asserting nothing else was printed."""
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def test_unknown_device_names_the_usable_ones():
    proc = serve("--device", "nosuchchip")
    line = one_error_line(proc)
    assert proc.returncode == EXIT_DEVICE
    assert "--device nosuchchip: no such backend installed" in line
    assert "available: " in line and "xeon" in line and "sglang backends" in line


def test_unavailable_device_says_why_and_what_is_available():
    from sglang.backend.discovery import discover

    cuda = discover().backends.get("cuda")
    if cuda is None or cuda.available:
        pytest.skip("needs the cuda backend installed and unavailable (a CPU machine)")
    proc = serve("--device", "cuda", launcher="launch_server")
    line = one_error_line(proc)
    assert proc.returncode == EXIT_DEVICE
    assert line.startswith("error: --device cuda: unavailable: ")
    assert cuda.why_unavailable() in line
    assert "available: xeon" in line


@pytest.mark.parametrize("launcher", ["cli", "launch_server"])
def test_missing_model_path(launcher):
    proc = serve("--model-path", "/nonexistent/model", launcher=launcher)
    line = one_error_line(proc)
    assert proc.returncode == EXIT_MODEL
    assert "'/nonexistent/model' does not exist" in line


def test_directory_without_a_model(tmp_path):
    (tmp_path / "README.md").write_text("not a model")
    proc = serve("--model-path", str(tmp_path))
    assert proc.returncode == EXIT_MODEL
    assert "no model weights" in one_error_line(proc)


def test_config_without_weights_needs_dummy(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    proc = serve("--model-path", str(tmp_path))
    assert proc.returncode == EXIT_MODEL
    assert "--load-format dummy" in one_error_line(proc)


def test_port_in_use():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "sglang.cli.main", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    line = one_error_line(proc)
    assert proc.returncode == EXIT_ADDRESS
    assert f"--port {port}: cannot bind" in line and "another --port" in line


def test_bad_values_are_usage_errors():
    proc = serve("--mem-fraction-static", "3")
    assert proc.returncode == EXIT_USAGE
    assert "--mem-fraction-static must be in (0, 1)" in one_error_line(proc)
    proc = serve("--dtype", "float8")
    assert proc.returncode == EXIT_USAGE
    assert "invalid choice: 'float8'" in proc.stderr


@pytest.mark.parametrize("launcher", ["cli", "launch_server"])
def test_a_mistyped_flag_is_a_usage_error_with_a_suggestion(launcher):
    proc = serve("--prot", "3", launcher=launcher)
    assert proc.returncode == EXIT_USAGE
    assert "unrecognized arguments: --prot 3" in proc.stderr
    assert "did you mean --port?" in proc.stderr


def test_a_failure_in_the_scheduler_process_comes_back_as_one_line(tmp_path):
    """A directory that passes the path check but holds an unknown architecture: the scheduler
    process fails while loading it, and the parent prints its one line."""
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["NoSuchModelForCausalLM"], "model_type": "nosuchmodel"})
    )
    (tmp_path / "model.safetensors").write_bytes(b"")
    proc = serve(
        "--model-path",
        str(tmp_path),
        "--skip-tokenizer-init",
        "--log-level",
        "error",
        "--device",
        "reference",
    )
    assert proc.returncode == EXIT_MODEL, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), proc.stderr
    assert str(tmp_path) in last or "nosuchmodel" in last.lower(), last


def test_engine_raises_one_line_without_chained_noise():
    import sglang

    with pytest.raises(StartupError) as err:
        sglang.Engine(device="nosuchchip")
    assert err.value.exit_code == EXIT_DEVICE
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("--device nosuchchip: no such backend installed")
    chained = err.value.__cause__ or (
        None if err.value.__suppress_context__ else err.value.__context__
    )
    assert chained is None, "the traceback would show another exception"
    with pytest.raises(StartupError) as err:
        sglang.Engine(model_path="/nonexistent/model")
    assert err.value.exit_code == EXIT_MODEL
    assert "\n" not in str(err.value)
