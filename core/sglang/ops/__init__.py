"""Op specs: semantics, reference kernels and conformance cases. The kernel registry that
resolves them is the backend contract's (sglang.backend.registry)."""

from sglang.ops.spec import Case, OpSpec, Tolerance
from sglang.ops.specs import all_specs, get_spec, register_spec

__all__ = [
    "Case",
    "OpSpec",
    "Tolerance",
    "all_specs",
    "get_spec",
    "register_spec",
]
