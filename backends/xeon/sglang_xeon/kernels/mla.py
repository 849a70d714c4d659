"""attention.mla_extend and attention.mla_decode on the CPU: the core's composition
(sglang.ops.mla_composed) over this backend's torch attention kernels (the flash-attention
path, which takes the 576-wide rows of DeepSeek's cache; the native decode stops at 256)."""

from __future__ import annotations

from sglang.ops.mla_composed import composed

from sglang_xeon.kernels.attention import decode, extend

mla_decode, mla_extend = composed(decode, extend)


def register(registry) -> None:
    registry.register("attention.mla_decode", mla_decode, name="xeon.mla_decode")
    registry.register("attention.mla_extend", mla_extend, name="xeon.mla_extend")
