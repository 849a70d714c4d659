"""Compile one of sglang_cuda's CUDA C++ sources (kernels/csrc) with nvcc for sm_90a, without a
GPU: ptxas's register and spill report, and the PTX of its entry point from griddepcontrol.wait
on, for the checks every such kernel owes (no spills; the PDL rule: nothing a kernel of the step
writes is read before the wait)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from sglang_cuda import nvrtc

NVCC = shutil.which("nvcc")


def spills(source: str, defines: list[str], tmp: Path) -> list[int]:
    """Bytes of spill stores ptxas reports, per function (an empty list: no report)."""
    out = subprocess.run(
        [
            NVCC,
            "-cubin",
            "-arch=sm_90a",
            "-Xptxas",
            "-v",
            *defines,
            "-o",
            str(tmp / "k.cubin"),
            str(nvrtc.CSRC / source),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    return [int(s) for s in re.findall(r"(\d+) bytes spill stores", out)]


def entry_ptx(source: str, entry: str, defines: list[str]) -> tuple[str, str]:
    """(the entry's PTX before griddepcontrol.wait, the rest)."""
    ptx = subprocess.run(
        [NVCC, "-ptx", "-arch=sm_90a", *defines, "-o", "-", str(nvrtc.CSRC / source)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    body = ptx[ptx.index(f".entry {entry}") :]
    end = body.find(".entry ", 1)  # a file with several kernels: this one's PTX only
    body = body if end < 0 else body[:end]
    wait = body.index("griddepcontrol.wait")
    return body[:wait], body[wait:]


GLOBAL_ACCESS = r"\b(ld|st|atom|red)\.global"
