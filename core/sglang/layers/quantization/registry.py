"""The quantization methods by name, and which one a checkpoint asks for.

Names are SGLang's `--quantization` choices (and the `quant_method` values checkpoints write).
A method registers a `QuantizationConfig` subclass, by import path so nothing loads before it
is chosen; a plugin or a later module can add its own with `register_quantization`.

Detection: config.json's `quantization_config` (as transformers writes it), else ModelOpt's
`hf_quant_config.json` beside it; `--quantization` forces a load-time method on a float
checkpoint (fp8, int4) or must agree with the checkpoint's own.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import TYPE_CHECKING, Any

from sglang.layers.quantization.errors import QuantizationError

if TYPE_CHECKING:
    from sglang.layers.quantization.base import QuantizationConfig

# name -> "module:Class" (imported on first use) or the class itself.
_METHODS: dict[str, Any] = {}
# alias -> the method whose checkpoints it names (SGLang's kernel-flavoured names).
_ALIASES: dict[str, str] = {}


def register_quantization(
    name: str, config_cls: str | type[QuantizationConfig], aliases: tuple[str, ...] = ()
) -> None:
    """Add a method: `config_cls` a QuantizationConfig subclass or its "module:Class" path.
    aliases: other `--quantization` / `quant_method` spellings served by the same method."""
    _METHODS[name] = config_cls
    for alias in aliases:
        _ALIASES[alias] = name


for _name, _path, _aliases in (
    ("fp8", "sglang.layers.quantization.fp8:Fp8Config", ("w8a8_fp8", "fbgemm_fp8")),
    ("awq", "sglang.layers.quantization.awq:AwqConfig", ("awq_marlin",)),
    ("gptq", "sglang.layers.quantization.gptq:GptqConfig", ("gptq_marlin",)),
    (
        "compressed-tensors",
        "sglang.layers.quantization.compressed_tensors:CompressedTensorsConfig",
        ("compressed_tensors",),
    ),
    (
        "modelopt",
        "sglang.layers.quantization.modelopt:ModelOptConfig",
        ("modelopt_fp8", "modelopt_fp4"),
    ),
    ("mxfp4", "sglang.layers.quantization.mxfp4:Mxfp4Config", ()),
    ("w8a8_int8", "sglang.layers.quantization.int8:Int8Config", ()),
    ("int4", "sglang.layers.quantization.int4:Int4Config", ()),
):
    register_quantization(_name, _path, _aliases)


def quantization_choices() -> tuple[str, ...]:
    """Every name `--quantization` takes."""
    return tuple(sorted({*_METHODS, *_ALIASES}))


def canonical_name(name: str) -> str:
    name = name.lower()
    return _ALIASES.get(name, name)


def config_class(name: str) -> type[QuantizationConfig]:
    entry = _METHODS[canonical_name(name)]
    if isinstance(entry, str):
        module, _, cls = entry.partition(":")
        entry = getattr(importlib.import_module(module), cls)
        _METHODS[canonical_name(name)] = entry
    return entry


def checkpoint_quantization(
    model_path: str | None, quantization_config: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The checkpoint's own declaration: config.json's quantization_config, else ModelOpt's
    hf_quant_config.json (its `quantization` section, with quant_method "modelopt")."""
    if quantization_config:
        return dict(quantization_config)
    if model_path and os.path.isdir(model_path):
        path = os.path.join(model_path, "hf_quant_config.json")
        if os.path.exists(path):
            with open(path) as f:
                data = json.load(f)
            return {"quant_method": "modelopt", **data.get("quantization", data)}
    return None


def resolve_quantization(
    checkpoint: dict[str, Any] | None, forced: str | None
) -> QuantizationConfig | None:
    """The config serving this checkpoint (None: unquantized). Raises QuantizationError with
    one line on an unknown or contradictory method."""
    if checkpoint is not None:
        declared = str(checkpoint.get("quant_method", "")).lower()
        if not declared:
            raise QuantizationError("the checkpoint's quantization_config has no quant_method")
        if canonical_name(declared) not in _METHODS:
            raise QuantizationError(
                f"unknown quant_method {declared!r} in the checkpoint's quantization_config "
                f"(known: {', '.join(sorted(_METHODS))})"
            )
        if forced is not None and canonical_name(forced) != canonical_name(declared):
            raise QuantizationError(
                f"--quantization {forced} does not match the checkpoint's quant_method "
                f"{declared!r} (leave --quantization unset to serve it as it is)"
            )
        return config_class(declared).from_config(checkpoint)
    if forced is None:
        return None
    if canonical_name(forced) not in _METHODS:
        raise QuantizationError(
            f"unknown --quantization {forced!r} (known: {', '.join(quantization_choices())})"
        )
    cls = config_class(forced)
    if not cls.online:
        raise QuantizationError(
            f"--quantization {forced} serves {forced} checkpoints, and this checkpoint is not "
            f"quantized (its config.json has no quantization_config); load-time methods: "
            f"{', '.join(n for n in sorted(_METHODS) if config_class(n).online)}"
        )
    return cls.from_config({"quant_method": canonical_name(forced)})


def backends_that_can(requires: set[str], columns: dict[str, frozenset[str] | None]) -> list[str]:
    """Backend names (of `columns`: name -> capability keys, None when unreadable) whose
    capabilities hold every key of `requires`."""
    return sorted(n for n, keys in columns.items() if keys is not None and requires <= keys)


def check_backend(
    config: QuantizationConfig,
    backend: str,
    features: frozenset[str],
    columns: dict[str, frozenset[str] | None],
) -> None:
    """Refuse a format the backend cannot run, naming format, backend and who can."""
    requires = set(config.requires())
    missing = sorted(requires - features)
    if not missing:
        return
    can = backends_that_can(requires, columns)
    raise QuantizationError(
        f"{config.describe()} checkpoints need {', '.join(missing)}, which backend {backend!r} "
        f"does not have; backends that can run them: {', '.join(can) or 'none installed'}"
    )


KV_CACHE_TYPES = {"fp8_e4m3": "float8_e4m3fn", "fp8_e5m2": "float8_e5m2"}


def check_kv_cache_dtype(
    kv_cache_dtype: str,
    backend: str,
    features: frozenset[str],
    columns: dict[str, frozenset[str] | None],
) -> None:
    """Refuse a quantized KV cache the backend's kv.store / attention kernels do not take."""
    if kv_cache_dtype == "auto":
        return
    key = f"kv_cache:{kv_cache_dtype}"
    if key not in features:
        can = backends_that_can({key}, columns)
        raise QuantizationError(
            f"--kv-cache-dtype {kv_cache_dtype} needs {key}, which backend {backend!r} does not "
            f"have; backends that can: {', '.join(can) or 'none installed'} (or leave it auto)"
        )
