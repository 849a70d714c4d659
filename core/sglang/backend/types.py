"""Typed records exchanged across the backend contract.

Everything a backend hands to the core is one of these records, never a loose dict, so a
backend written against `API_VERSION` 1 keeps working as records gain optional fields.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Major version of the contract. A backend declaring another major version is refused at
# registration; hooks only ever grow by gaining keyword arguments with defaults.
API_VERSION = 1

# Backend kinds, in the order `--device auto` prefers them.
KIND_ACCELERATOR = "accelerator"
KIND_CPU = "cpu"
KIND_FALLBACK = "fallback"
KINDS = (KIND_ACCELERATOR, KIND_CPU, KIND_FALLBACK)


@dataclass(frozen=True)
class BackendInfo:
    """Who a backend is. `device_type` is the torch device type its tensors live on."""

    name: str
    version: str
    device_type: str
    api_version: int = API_VERSION
    kind: str = KIND_ACCELERATOR
    # Higher wins among available backends of the same kind under `--device auto`.
    auto_priority: int = 0
    description: str = ""
    # How its kernels were verified, in a sentence: where its conformance ran (the device, an
    # emulator in CI) and where the report is, or "unverified: ..." (`sglang backends`, ops.md).
    verification: str = ""


@dataclass(frozen=True)
class ProbeResult:
    """Whether a backend can run here. Reasons say why not (or note caveats when available)."""

    available: bool
    reasons: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, *notes: str, **details: Any) -> ProbeResult:
        return cls(True, tuple(notes), details)

    @classmethod
    def unavailable(cls, *reasons: str, **details: Any) -> ProbeResult:
        if not reasons:
            raise ValueError("an unavailable probe result must say why")
        return cls(False, tuple(reasons), details)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do. Op specs and kernels state requirements as feature keys
    (`"dtype:bfloat16"`, `"fp8:e4m3fn"`, `"attention:sliding_window"`, `"page_size:16"`, ...);
    `features()` flattens this record into that key space."""

    dtypes: frozenset[str] = frozenset({"float32"})
    fp8_formats: frozenset[str] = frozenset()  # "e4m3fn", "e5m2"
    fp4_formats: frozenset[str] = frozenset()  # "nvfp4", "mxfp4"
    # "awq", "gptq", "gptq_act_order", "float_zeros", "w4a8" (gemm.w4a8: int8 activations)
    int4_schemes: frozenset[str] = frozenset()
    int8: bool = False  # w8a8 GEMM
    # "gqa", "sliding_window", "logit_softcap", "custom_scale", "sinks" (gpt-oss)
    attention_features: frozenset[str] = frozenset()
    # moe.experts beyond silu / gelu: "swigluoai" (gpt-oss's activation), "bias" (expert biases)
    moe_features: frozenset[str] = frozenset()
    kv_layouts: tuple[str, ...] = ("NHD",)  # token-major [slots, kv_heads, head_dim]
    # Quantized KV caches its kv.store and attention kernels take ("fp8_e4m3", "fp8_e5m2"):
    # buffers of that type holding k / k_scale, v / v_scale (`--kv-cache-dtype`).
    kv_cache_dtypes: frozenset[str] = frozenset()
    page_sizes: tuple[int, ...] = (1,)
    graph_capture: bool = False
    async_streams: bool = False
    collectives: frozenset[str] = frozenset()  # "all_reduce", "all_gather", ...
    # Name-keyed extensions for what only some backends have; never read by the core.
    extensions: Mapping[str, Any] = field(default_factory=dict)

    def features(self) -> frozenset[str]:
        keys = {f"dtype:{d}" for d in self.dtypes}
        keys |= {f"fp8:{f}" for f in self.fp8_formats}
        keys |= {f"fp4:{f}" for f in self.fp4_formats}
        keys |= {f"int4:{s}" for s in self.int4_schemes}
        keys |= {f"attention:{a}" for a in self.attention_features}
        keys |= {f"moe:{m}" for m in self.moe_features}
        keys |= {f"kv_layout:{k}" for k in self.kv_layouts}
        keys |= {f"kv_cache:{k}" for k in self.kv_cache_dtypes}
        keys |= {f"page_size:{p}" for p in self.page_sizes}
        keys |= {f"collective:{c}" for c in self.collectives}
        if self.int8:
            keys.add("int8:w8a8")
        if self.graph_capture:
            keys.add("graph_capture")
        if self.async_streams:
            keys.add("async_streams")
        return frozenset(keys)

    def missing(self, required: tuple[str, ...] | list[str] | set[str]) -> list[str]:
        have = self.features()
        return sorted(k for k in required if k not in have)

    def to_json(self) -> dict[str, Any]:
        return {
            "dtypes": sorted(self.dtypes),
            "fp8_formats": sorted(self.fp8_formats),
            "fp4_formats": sorted(self.fp4_formats),
            "int4_schemes": sorted(self.int4_schemes),
            "int8": self.int8,
            "attention_features": sorted(self.attention_features),
            "moe_features": sorted(self.moe_features),
            "kv_layouts": list(self.kv_layouts),
            "kv_cache_dtypes": sorted(self.kv_cache_dtypes),
            "page_sizes": list(self.page_sizes),
            "graph_capture": self.graph_capture,
            "async_streams": self.async_streams,
            "collectives": sorted(self.collectives),
            "extensions": {k: repr(v) for k, v in self.extensions.items()},
        }


@dataclass(frozen=True)
class ServerDefaults:
    """Per-device defaults for server arguments the user did not set. `None` leaves the
    core's own default in place."""

    mem_fraction_static: float | None = None
    chunked_prefill_size: int | None = None
    graph_batch_sizes: tuple[int, ...] | None = None
    max_running_requests: int | None = None
    attention_backend: str | None = None
    page_size: int | None = None
    # The float type to serve in where the checkpoint leaves it open (`--dtype auto` on a
    # float32 checkpoint or a quantized GGUF file): the fastest type this device computes in
    # at full quality, e.g. "bfloat16" on CPUs with AVX-512 BF16 or AMX. None: float32.
    dtype: str | None = None
    # The float type for a GGUF file's activations where `dtype` is None: where the kernels
    # for the file's codes take it natively though the device's dense matmuls do not (xeon on
    # AVX2 CPUs without AVX-512 BF16: gemm.w4a8 quantizes bf16 activations to int8 as
    # llama.cpp does, while a float32 checkpoint stays float32). None: `dtype`'s rule.
    gguf_dtype: str | None = None
    # A cap on the KV pool's bytes for devices whose memory the host shares (vLLM's CPU
    # backend defaults to 4 GiB): a CPU pool sized as a fraction of RAM would take most of
    # it for a small model. It yields to an explicit --mem-fraction-static. None: no cap.
    kv_cache_bytes: int | None = None

    def preferred_dtype(self, gguf: bool) -> str | None:
        """The type `--dtype auto` takes where the checkpoint leaves it open."""
        return self.dtype or (self.gguf_dtype if gguf else None)


def match_case_id(pattern: str, case_id: str) -> bool:
    """fnmatch over case ids with brackets taken literally, as users write them:
    "gemm.dense[f32-*]" matches "gemm.dense[f32-M1-K128-N96-bias]" (plain fnmatch would read
    "[f32-*]" as a character class and match nothing). `*` and `?` stay wildcards."""
    escaped = "".join("[[]" if c == "[" else "[]]" if c == "]" else c for c in pattern)
    return fnmatch.fnmatchcase(case_id, escaped)


@dataclass(frozen=True)
class ExpectedFailure:
    """A conformance case (pattern over case ids, see `match_case_id`) known to fail, and why.
    `kernel` (an fnmatch pattern over kernel names) narrows it to some of the backend's
    kernels. Strict: a case listed here that passes is reported as a failure, so the manifest
    stays honest; an entry that matches no case at all is an error."""

    pattern: str
    reason: str
    kernel: str | None = None

    def matches(self, case_id: str, kernel: str | None = None) -> bool:
        if self.kernel is not None and not fnmatch.fnmatchcase(kernel or "", self.kernel):
            return False
        return match_case_id(self.pattern, case_id)


@dataclass(frozen=True)
class ToleranceOverride:
    """Looser (or tighter) tolerance for matching cases (and kernels), and why. The reason is
    printed in the report beside every check it applies to."""

    pattern: str
    reason: str
    atol: float | None = None
    rtol: float | None = None
    max_error: float | None = None  # NMSE, for global-error metrics
    rel_rms: float | None = None  # ||out - ref|| / ||ref||
    peak: float | None = None  # max |out - ref| / rms(ref), for global-error metrics
    kernel: str | None = None

    def matches(self, case_id: str, kernel: str | None = None) -> bool:
        if self.kernel is not None and not fnmatch.fnmatchcase(kernel or "", self.kernel):
            return False
        return match_case_id(self.pattern, case_id)

    def bounds(self) -> dict[str, float | None]:
        return {
            "atol": self.atol,
            "rtol": self.rtol,
            "max_error": self.max_error,
            "rel_rms": self.rel_rms,
            "peak": self.peak,
        }


@dataclass(frozen=True)
class ConformanceManifest:
    expected_failures: tuple[ExpectedFailure, ...] = ()
    tolerance_overrides: tuple[ToleranceOverride, ...] = ()

    def __post_init__(self) -> None:
        for entry in (*self.expected_failures, *self.tolerance_overrides):
            if not entry.reason.strip():
                raise ValueError(f"manifest entry {entry.pattern!r} needs a reason")

    def expected_failure(self, case_id: str, kernel: str | None = None) -> ExpectedFailure | None:
        return next((e for e in self.expected_failures if e.matches(case_id, kernel)), None)

    def tolerance_override(
        self, case_id: str, kernel: str | None = None
    ) -> ToleranceOverride | None:
        return next((t for t in self.tolerance_overrides if t.matches(case_id, kernel)), None)

    def unmatched(
        self, case_ids: list[str], kernels: list[str]
    ) -> list[ExpectedFailure | ToleranceOverride]:
        """The entries that match none of `case_ids` with any of `kernels` (a typo, a renamed
        case, a bracket read as a character class): each is an error, not a silent no-op."""
        return [
            e
            for e in (*self.expected_failures, *self.tolerance_overrides)
            if not any(match_case_id(e.pattern, c) for c in case_ids)
            or (e.kernel is not None and not any(fnmatch.fnmatchcase(k, e.kernel) for k in kernels))
        ]
