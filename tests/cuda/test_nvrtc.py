"""sglang_cuda.nvrtc without a GPU: the launch structures match the CUDA driver's layout
(CUlaunchConfig, CUlaunchAttribute with the programmatic-serialization value where the driver
reads it), and importing the module leaves the interpreter intact. A first version wrote the
attribute's value through a ctypes char-array field, which reads back as Python's shared empty
bytes object: after that import, every empty file's import failed with "source code string
cannot contain null bytes" and os.environ refused "" ("embedded null byte")."""

from __future__ import annotations

import ctypes
import struct
import subprocess
import sys

from sglang_cuda import nvrtc


def test_launch_structures_match_the_driver_abi():
    assert ctypes.sizeof(nvrtc._LaunchAttribute) == 72  # id, padding, a 64-byte union
    assert ctypes.sizeof(nvrtc._LaunchConfig) == 56  # 7 uints, stream, attrs, numAttrs
    raw = bytes(nvrtc._PDL)
    assert struct.unpack_from("<i", raw, 0)[0] == 6  # CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_...
    assert struct.unpack_from("<i", raw, 8)[0] == 1  # programmaticStreamSerializationAllowed
    assert nvrtc._LaunchConfig.hStream.offset == 32 and nvrtc._LaunchConfig.numAttrs.offset == 48


def test_importing_it_leaves_empty_bytes_intact():
    code = (
        "import os, sglang_cuda.nvrtc, sglang_cuda.kernels\n"
        "os.environ['SGLANG_EMPTY'] = ''\n"
        "compile(b'', 'empty.py', 'exec')\n"
        "assert len(b''.join([b'', b''])) == 0\n"
        "print('intact')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "intact" in out.stdout, out.stderr


def test_block_warps():
    """About 16 warps a processor, in powers of two from 4 to 16 (132 processors: the H200)."""
    assert nvrtc.block_warps(896, 132) == 4  # Llama-8B gate_up, 32-column blocks
    assert nvrtc.block_warps(192, 132) == 8  # qkv
    assert nvrtc.block_warps(128, 132) == 16  # o, down
    assert nvrtc.block_warps(1, 132) == 16 and nvrtc.block_warps(10**6, 132) == 4
    assert nvrtc.block_warps(896, 132, least=2) == 2  # gate_up in one wave
    assert nvrtc.block_warps(10**6, 132, least=1) == 1
    assert nvrtc.warps_for(8, 128, None) == 8  # a number is taken as it is
