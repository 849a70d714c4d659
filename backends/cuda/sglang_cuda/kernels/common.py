"""The shared Triton helpers under their old name, for scaled_mm.py alone (kept unchanged while
its fp8 fix is under way); scaled_mm.py moves to sglang_triton next and this file goes."""

from sglang_triton.common import grouped_tile, mma  # noqa: F401
