"""The tpu kernels, one module per op family (mirroring sglang.ops), each with register().

None are registered yet: the JAX/Pallas kernels come in later issues (Pallas runs with
`interpret=True` on the CPU, so the conformance suite can check them without a TPU). Until
then every op resolves to the core's reference kernel.
"""

from __future__ import annotations

KERNEL_MODULES: tuple[str, ...] = ()
