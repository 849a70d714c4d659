"""Op specs (semantics + reference kernels + conformance cases) and the kernel registry."""

from sglang.ops.registry import Kernel, KernelRegistrar, KernelRegistry, Rejection, Resolution
from sglang.ops.spec import Case, OpSpec, Tolerance
from sglang.ops.specs import all_specs, get_spec, register_spec

__all__ = [
    "Case",
    "Kernel",
    "KernelRegistrar",
    "KernelRegistry",
    "OpSpec",
    "Rejection",
    "Resolution",
    "Tolerance",
    "all_specs",
    "get_spec",
    "register_spec",
]
