"""CUDA C++ kernels compiled at run time with NVRTC and launched through the driver API.

For the few kernels that Triton cannot express well (instruction-exact inner loops on the tensor
cores): the source ships with the package (kernels/csrc), is compiled once per process and
variant for the GPU's own architecture (a cubin, no PTX JIT at load), and launched on torch's
current stream with cuLaunchKernelEx, so a launch is captured by CUDA graphs like any other and
can carry the programmatic-dependent-launch attribute (sglang_triton.pdl) that the Triton
kernels use.

Only ctypes: NVRTC comes with torch's CUDA wheels (nvidia-cuda-nvrtc) and libcuda with the
driver. Nothing here runs without a CUDA device; `available()` says why not.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import logging
import math
import os
import threading
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)

CSRC = Path(__file__).resolve().parent / "kernels" / "csrc"
_PROGRAMMATIC_STREAM_SERIALIZATION = 6  # CUlaunchAttributeID
_MAX_DYNAMIC_SHARED = 8  # CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
_PREFERRED_CARVEOUT = 9  # CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT
_LOCK = threading.Lock()


class _LaunchAttribute(ctypes.Structure):
    """CUlaunchAttribute: an id, padding, and a 64-byte value union whose first int is what
    the programmatic-serialization attribute reads."""

    _fields_ = [
        ("id", ctypes.c_int),
        ("pad", ctypes.c_int),
        ("value", ctypes.c_int),
        ("rest", ctypes.c_ubyte * 60),
    ]


class _LaunchConfig(ctypes.Structure):
    _fields_ = [
        ("gridDimX", ctypes.c_uint),
        ("gridDimY", ctypes.c_uint),
        ("gridDimZ", ctypes.c_uint),
        ("blockDimX", ctypes.c_uint),
        ("blockDimY", ctypes.c_uint),
        ("blockDimZ", ctypes.c_uint),
        ("sharedMemBytes", ctypes.c_uint),
        ("hStream", ctypes.c_void_p),
        ("attrs", ctypes.POINTER(_LaunchAttribute)),
        ("numAttrs", ctypes.c_uint),
    ]


def _pdl_attribute() -> _LaunchAttribute:
    # (a ctypes char-array field reads back as a bytes copy, b'' when zero: never write
    # through it, that would write into Python's shared empty bytes object)
    return _LaunchAttribute(id=_PROGRAMMATIC_STREAM_SERIALIZATION, value=1)


_PDL = _pdl_attribute()


@functools.cache
def _libcuda() -> ctypes.CDLL:
    return ctypes.CDLL("libcuda.so.1")


def _site_packages_nvrtc(root: str) -> list[str]:
    """libnvrtc under `root`'s nvidia/ wheels (nvidia/cu13/lib, nvidia/cuda_nvrtc/lib)."""
    found = glob.glob(os.path.join(root, "nvidia", "**", "libnvrtc.so*"), recursive=True)
    return sorted(p for p in found if "builtins" not in p and ".alt." not in p)


def _load_nvrtc(name: str) -> ctypes.CDLL:
    """A library loaded by path finds its builtins (libnvrtc-builtins) only if they are loaded
    first: the wheel's folder is not on the loader's path."""
    if os.path.isabs(name):
        for b in sorted(glob.glob(os.path.join(os.path.dirname(name), "libnvrtc-builtins.so*"))):
            if ".alt." not in b:
                ctypes.CDLL(b, mode=ctypes.RTLD_GLOBAL)
    return ctypes.CDLL(name)


@functools.cache
def _libnvrtc() -> ctypes.CDLL:
    """The NVRTC that torch's CUDA wheel depends on (already loaded by torch, usually)."""
    major = (torch.version.cuda or "").split(".")[0]
    names = ([f"libnvrtc.so.{major}"] if major else []) + ["libnvrtc.so"]
    names += _site_packages_nvrtc(os.path.dirname(os.path.dirname(torch.__file__)))
    errors = []
    for name in names:
        try:
            return _load_nvrtc(name)
        except OSError as e:
            errors.append(f"{name}: {e}")
    raise RuntimeError("NVRTC not found (" + "; ".join(errors) + ")")


@functools.cache
def available() -> str | None:
    """None when kernels can be compiled and launched here, else the reason they cannot."""
    if torch.version.cuda is None or torch.version.hip is not None:
        return "torch is not a CUDA build"
    if not torch.cuda.is_available():
        return "no CUDA device"
    try:
        _libcuda().cuLaunchKernelEx  # noqa: B018 - CUDA 12+ drivers
        _libnvrtc()
    except (OSError, RuntimeError, AttributeError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def _check_cu(result: int, what: str) -> None:
    if result != 0:
        msg = ctypes.c_char_p()
        _libcuda().cuGetErrorString(result, ctypes.byref(msg))
        raise RuntimeError(f"{what} failed: CUDA error {result} ({(msg.value or b'').decode()})")


def compile_cubin(source: str, name: str, arch: str, options: tuple[str, ...] = ()) -> bytes:
    """`source` compiled by NVRTC for `arch` ("sm_90a", ...) -> cubin bytes; the compiler's log
    in the exception when it fails."""
    nvrtc = _libnvrtc()
    prog = ctypes.c_void_p()
    _nvrtc_ok(
        nvrtc,
        nvrtc.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None),
        "nvrtcCreateProgram",
    )
    try:
        opts = [f"--gpu-architecture={arch}", "-std=c++17", *options]
        c_opts = (ctypes.c_char_p * len(opts))(*(o.encode() for o in opts))
        rc = nvrtc.nvrtcCompileProgram(prog, len(opts), c_opts)
        if rc != 0:
            size = ctypes.c_size_t()
            nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
            buf = ctypes.create_string_buffer(size.value)
            nvrtc.nvrtcGetProgramLog(prog, buf)
            raise RuntimeError(
                f"NVRTC could not compile {name} ({' '.join(opts)}):\n"
                + buf.value.decode(errors="replace")
            )
        size = ctypes.c_size_t()
        _nvrtc_ok(nvrtc, nvrtc.nvrtcGetCUBINSize(prog, ctypes.byref(size)), "nvrtcGetCUBINSize")
        buf = ctypes.create_string_buffer(size.value)
        _nvrtc_ok(nvrtc, nvrtc.nvrtcGetCUBIN(prog, buf), "nvrtcGetCUBIN")
        return buf.raw
    finally:
        nvrtc.nvrtcDestroyProgram(ctypes.byref(prog))


def _nvrtc_ok(nvrtc, rc: int, what: str) -> None:
    if rc != 0:
        nvrtc.nvrtcGetErrorString.restype = ctypes.c_char_p
        raise RuntimeError(f"{what} failed: {nvrtc.nvrtcGetErrorString(rc).decode()}")


def arch_of(device: torch.device) -> str:
    """The cubin target of `device`: sm_90a on Hopper (its own instructions), else sm_XY."""
    major, minor = torch.cuda.get_device_capability(device)
    return f"sm_{major}{minor}" + ("a" if (major, minor) == (9, 0) else "")


class Kernel:
    """One compiled kernel function on one device (its module kept alive with it)."""

    def __init__(self, cubin: bytes, name: str, device: torch.device) -> None:
        cu = _libcuda()
        index = device.index if device.index is not None else torch.cuda.current_device()
        with torch.cuda.device(index):
            torch.cuda.current_stream()  # the runtime makes the primary context current
            ctx, dev = ctypes.c_void_p(), ctypes.c_int()
            _check_cu(cu.cuDeviceGet(ctypes.byref(dev), index), "cuDeviceGet")
            _check_cu(
                cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain"
            )
            _check_cu(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
            self._module = ctypes.c_void_p()
            _check_cu(cu.cuModuleLoadData(ctypes.byref(self._module), cubin), "cuModuleLoadData")
            self._fn = ctypes.c_void_p()
            _check_cu(
                cu.cuModuleGetFunction(ctypes.byref(self._fn), self._module, name.encode()),
                f"cuModuleGetFunction({name})",
            )
        self.name = name
        self.device_index = index
        self._smem_limit = 48 << 10  # dynamic shared memory a launch may ask for without opt-in
        self._carveout = -1  # the driver's choice

    def _allow_shared_memory(self, nbytes: int) -> None:
        if nbytes > self._smem_limit:
            _check_cu(
                _libcuda().cuFuncSetAttribute(self._fn, _MAX_DYNAMIC_SHARED, nbytes),
                f"cuFuncSetAttribute({self.name}, {nbytes} bytes of shared memory)",
            )
            self._smem_limit = nbytes

    def prefer_carveout(self, percent: int | None) -> None:
        """The share of a processor's L1 / shared memory this kernel prefers as shared memory,
        in percent (None: the driver's choice). A hint the driver may round; kept for the
        function until changed."""
        value = -1 if percent is None else int(percent)
        if value != self._carveout:
            _check_cu(
                _libcuda().cuFuncSetAttribute(self._fn, _PREFERRED_CARVEOUT, value),
                f"cuFuncSetAttribute({self.name}, carveout {value})",
            )
            self._carveout = value

    def launch(
        self,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        args: list,
        stream: int,
        pdl: bool = False,
        shared: int = 0,
    ) -> None:
        """Launch on `stream` (a CUstream handle, torch's `stream.cuda_stream`) with `shared`
        bytes of dynamic shared memory; args: ctypes values in the kernel's parameter order."""
        self._allow_shared_memory(shared)
        cfg = _LaunchConfig(*grid, *block, shared, ctypes.c_void_p(stream), None, 0)
        if pdl:
            cfg.attrs = ctypes.pointer(_PDL)
            cfg.numAttrs = 1
        params = (ctypes.c_void_p * len(args))(
            *(ctypes.cast(ctypes.byref(a), ctypes.c_void_p) for a in args)
        )
        _check_cu(
            _libcuda().cuLaunchKernelEx(ctypes.byref(cfg), self._fn, params, None),
            f"cuLaunchKernelEx({self.name})",
        )


WARPS_PER_SM = 16
"""What `block_warps` aims at: the int4 GEMV's best launch per Llama-8B shape on the H200 was
4 warps a block for 896 blocks, 8 for 192 and 16 for 128 (about 16 warps a processor)."""


@functools.cache
def processors(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def block_warps(blocks: int, processors: int, least: int = 4) -> int:
    """Warps a block for a grid of `blocks` that split their work along K: the power of two
    nearest processors * WARPS_PER_SM / blocks, `least` to 16."""
    want = processors * WARPS_PER_SM / max(blocks, 1)
    return min(16, max(least, 1 << max(0, round(math.log2(max(want, 1.0))))))


def warps_for(cfg_warps, blocks: int, device: torch.device, least: int = 4) -> int:
    """A launch table's "warps": a number, or "auto" (`block_warps` on this device, at least
    `least` warps a block)."""
    if cfg_warps != "auto":
        return int(cfg_warps)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return block_warps(blocks, processors(index), least)


def aligned(*tensors: torch.Tensor) -> bool:
    """Whether every tensor's data starts on a 16-byte boundary (the kernels' vector loads)."""
    return all(t.data_ptr() % 16 == 0 for t in tensors)


_KERNELS: dict[tuple, Kernel] = {}


def kernel(
    file: str, name: str, device: torch.device, defines: tuple[tuple[str, int], ...]
) -> Kernel:
    """kernels/csrc/`file`'s function `name` compiled with `defines` for `device` (cached for the
    process; the first call compiles, logged with its time)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    key = (file, name, index, defines)
    k = _KERNELS.get(key)
    if k is not None:
        return k
    with _LOCK:
        k = _KERNELS.get(key)
        if k is None:
            t0 = time.perf_counter()
            arch = arch_of(torch.device("cuda", index))
            opts = (f"--include-path={CSRC}", *(f"-D{d}={v}" for d, v in defines))
            cubin = compile_cubin((CSRC / file).read_text(), file, arch, opts)
            k = _KERNELS[key] = Kernel(cubin, name, torch.device("cuda", index))
            log.info(
                "compiled %s:%s for %s (%s) in %.2f s",
                file,
                name,
                arch,
                " ".join(opts),
                time.perf_counter() - t0,
            )
    return k
