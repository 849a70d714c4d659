"""The model configuration the engine reads: a typed record over the Hugging Face config.

`load_model_config` builds it with transformers' AutoConfig, from `config.json` or from a GGUF
file's metadata (transformers' GGUF tables applied to its fast metadata reader, see
gguf_config, else AutoConfig; kept in a disk cache, see gguf_cache), and
normalises what differs across model families
and transformers versions: rope parameters (transformers 5 folds `rope_theta` and
`rope_scaling` into `rope_parameters`, per layer type for Gemma 3), sliding-window layers
(`layer_types`, or every layer for Mistral-style configs), the activation's name, and eos ids.
Multimodal configs are read through their text config. The raw config stays in `raw`.

dtype "auto" is the checkpoint's own half type when it has one: the config's `dtype`
(`torch_dtype` before transformers 5) when it names a float type, else the dtype of the
weights themselves (the first floating tensor of a safetensors checkpoint; the float type of a
GGUF file). Where that leaves float32 (a float32 checkpoint, a quantized GGUF file) the
backend's preferred type (`ServerDefaults.dtype`, passed as `preferred`) is taken, as vLLM and
SGLang serve float32 checkpoints in half precision; with none, float32. `dtype_reason` says
which rule decided.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch

from sglang.model_loader.source import ModelSource, resolve_source

DTYPE_NAMES = {
    "float32": torch.float32,
    "float": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "half": torch.float16,
    "fp16": torch.float16,
}
SLIDING_LAYER_TYPES = ("sliding_attention",)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """What the engine needs from a model's configuration.

    head_dim: the config's, else hidden_size // num_attention_heads. rope_theta / rope_scaling:
    those of the full-attention layers; rope_scaling is None for plain rope, else a dict with a
    "rope_type" key (copied from a legacy "type") and no "rope_theta". sliding_rope_theta /
    sliding_rope_scaling: those of sliding-window layers where they differ (Gemma 3), else None.
    sliding_window: the window in tokens, None when no layer uses one; sliding_window_layers:
    indices of the layers that use it. query_pre_attn_scalar: Gemma's query scale denominator
    (see `attention_scale`). eos_token_ids: every eos id of the config, as a tuple.
    """

    architectures: tuple[str, ...]
    model_type: str
    dtype: torch.dtype
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int | None
    vocab_size: int
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: dict[str, Any] | None
    partial_rotary_factor: float
    max_position_embeddings: int | None
    tie_word_embeddings: bool
    sliding_window: int | None
    sliding_window_layers: tuple[int, ...]
    sliding_rope_theta: float | None
    sliding_rope_scaling: dict[str, Any] | None
    attn_logit_softcapping: float | None
    final_logit_softcapping: float | None
    query_pre_attn_scalar: float | None
    hidden_act: str
    attention_bias: bool
    bos_token_id: int | None
    eos_token_ids: tuple[int, ...]
    quantization_config: dict[str, Any] | None
    raw: Any = dataclasses.field(repr=False, compare=False)
    dtype_reason: str = ""  # which rule chose `dtype` (for the startup log)

    @property
    def attention_scale(self) -> float:
        """Softmax scale: query_pre_attn_scalar ** -0.5 where set (Gemma), else head_dim ** -0.5."""
        return float(self.query_pre_attn_scalar or self.head_dim) ** -0.5

    def uses_sliding_window(self, layer: int) -> bool:
        return layer in self.sliding_window_layers

    def rope_for_layer(self, layer: int) -> tuple[float, dict[str, Any] | None]:
        """(theta, scaling) of one layer's rotary embedding."""
        if self.uses_sliding_window(layer) and self.sliding_rope_theta is not None:
            return self.sliding_rope_theta, self.sliding_rope_scaling
        return self.rope_theta, self.rope_scaling


def load_model_config(
    source: ModelSource | str | os.PathLike,
    dtype: str | torch.dtype = "auto",
    trust_remote_code: bool = False,
    preferred: str | None = None,
) -> ModelConfig:
    """Read the configuration of `source` (a ModelSource or a model path) into a ModelConfig.

    dtype: "auto" (see the module docstring), a name from DTYPE_NAMES, or a torch.dtype.
    preferred: the backend's type for checkpoints that leave it open (ServerDefaults.dtype).
    """
    source = resolve_source(source)
    raw = _hf_config(source, trust_remote_code)
    resolved, reason = _resolve_dtype(dtype, raw, source, preferred)
    return dataclasses.replace(model_config_from_hf(raw, resolved), dtype_reason=reason)


def _hf_config(source: ModelSource, trust_remote_code: bool) -> Any:
    from transformers import AutoConfig

    if source.is_gguf:
        from sglang.model_loader.gguf_cache import cached

        def build() -> Any:
            from sglang.model_loader.gguf_config import gguf_config

            built = gguf_config(source.weight_files[0], source.directory)  # the metadata alone
            return built or AutoConfig.from_pretrained(
                source.directory, gguf_file=source.gguf_file, local_files_only=True
            )

        def load(entry: str) -> Any:
            config = AutoConfig.from_pretrained(entry, local_files_only=True)
            config.name_or_path = source.directory  # as the uncached read names it
            return config

        return cached(source.weight_files[0], "config", build, load)
    return AutoConfig.from_pretrained(
        source.directory, trust_remote_code=trust_remote_code, local_files_only=True
    )


def model_config_from_hf(raw: Any, dtype: torch.dtype) -> ModelConfig:
    """The ModelConfig of a transformers config object, in `dtype`."""
    text = raw.get_text_config() if hasattr(raw, "get_text_config") else raw
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    rope = _rope_by_layer_type(text)
    full_theta, full_scaling, partial = rope.get("full_attention", rope["default"])
    sliding_layers = sliding_window_layers(text)
    sliding = rope.get("sliding_attention")
    sliding_differs = sliding is not None and sliding[:2] != (full_theta, full_scaling)
    return ModelConfig(
        architectures=_architectures(raw),
        model_type=raw.model_type,
        dtype=dtype,
        hidden_size=text.hidden_size,
        num_hidden_layers=text.num_hidden_layers,
        num_attention_heads=heads,
        num_key_value_heads=getattr(text, "num_key_value_heads", None) or heads,
        head_dim=head_dim,
        intermediate_size=getattr(text, "intermediate_size", None),
        vocab_size=text.vocab_size,
        rms_norm_eps=float(_first_attr(text, ("rms_norm_eps", "layer_norm_eps"), 1e-6)),
        rope_theta=full_theta,
        rope_scaling=full_scaling,
        partial_rotary_factor=partial,
        max_position_embeddings=getattr(text, "max_position_embeddings", None),
        tie_word_embeddings=bool(_first_attr(text, ("tie_word_embeddings",), False)),
        sliding_window=getattr(text, "sliding_window", None) if sliding_layers else None,
        sliding_window_layers=sliding_layers,
        sliding_rope_theta=sliding[0] if sliding_differs else None,
        sliding_rope_scaling=sliding[1] if sliding_differs else None,
        attn_logit_softcapping=getattr(text, "attn_logit_softcapping", None),
        final_logit_softcapping=getattr(text, "final_logit_softcapping", None),
        query_pre_attn_scalar=getattr(text, "query_pre_attn_scalar", None),
        hidden_act=_first_attr(text, ("hidden_act", "hidden_activation"), "silu"),
        attention_bias=bool(getattr(text, "attention_bias", False)),
        bos_token_id=_first_attr(text, ("bos_token_id",), getattr(raw, "bos_token_id", None)),
        eos_token_ids=_eos_ids(
            _first_attr(text, ("eos_token_id",), getattr(raw, "eos_token_id", None))
        ),
        quantization_config=_as_dict(getattr(raw, "quantization_config", None)),
        raw=raw,
    )


def _first_attr(config: Any, names: tuple[str, ...], default: Any) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def _architectures(raw: Any) -> tuple[str, ...]:
    """The config's architectures; for a config without them (GGUF), the causal LM class."""
    if raw.architectures:
        return tuple(raw.architectures)
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    name = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(raw.model_type)
    return (name,) if name else ()


def _rope_by_layer_type(text: Any) -> dict[str, tuple[float, dict | None, float]]:
    """{"default" | layer type: (theta, normalised scaling, partial_rotary_factor)}."""
    params = getattr(text, "rope_parameters", None)
    if params is None:
        legacy = dict(getattr(text, "rope_scaling", None) or {})
        legacy.setdefault("rope_theta", getattr(text, "rope_theta", 10000.0))
        params = legacy
    partial = float(getattr(text, "partial_rotary_factor", None) or 1.0)
    if params and all(isinstance(v, dict) for v in params.values()):
        table = {kind: _normalise_rope(p, partial) for kind, p in params.items()}
        table["default"] = table.get("full_attention", next(iter(table.values())))
        return table
    return {"default": _normalise_rope(params, partial)}


def _normalise_rope(params: dict, partial: float) -> tuple[float, dict | None, float]:
    scaling = dict(params)
    theta = float(scaling.pop("rope_theta", 10000.0))
    partial = float(scaling.pop("partial_rotary_factor", partial))
    legacy_type = scaling.pop("type", None)
    scaling["rope_type"] = scaling.get("rope_type") or legacy_type or "default"
    if scaling == {"rope_type": "default"}:
        return theta, None, partial
    return theta, scaling, partial


def sliding_window_layers(text: Any) -> tuple[int, ...]:
    """Indices of the layers that use the config's sliding window: those `layer_types` marks
    sliding, else every layer when a window is set and `use_sliding_window` is not False."""
    if getattr(text, "sliding_window", None) is None:
        return ()
    layer_types = getattr(text, "layer_types", None)
    if layer_types is not None:
        return tuple(i for i, kind in enumerate(layer_types) if kind in SLIDING_LAYER_TYPES)
    if getattr(text, "use_sliding_window", True) is False:
        return ()
    return tuple(range(text.num_hidden_layers))


def _eos_ids(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)


def _as_dict(value: Any) -> dict | None:
    if value is None:
        return None
    return dict(value) if isinstance(value, dict) else value.to_dict()


def _resolve_dtype(
    dtype: str | torch.dtype, raw: Any, source: ModelSource, preferred: str | None = None
) -> tuple[torch.dtype, str]:
    """(dtype, why) for `--dtype` (see the module docstring)."""
    if isinstance(dtype, torch.dtype):
        return dtype, "asked for"
    if dtype != "auto":
        if dtype not in DTYPE_NAMES:
            raise ValueError(f"unknown dtype {dtype!r}: use 'auto' or one of {sorted(DTYPE_NAMES)}")
        return DTYPE_NAMES[dtype], "--dtype"
    text = raw.get_text_config() if hasattr(raw, "get_text_config") else raw
    found, where = None, ""
    for config in (raw, text):
        # transformers 5 renamed torch_dtype to dtype, and warns when the old name is read.
        name = "dtype" if hasattr(config, "dtype") else "torch_dtype"
        declared = _as_torch_dtype(getattr(config, name, None))
        if declared is not None and declared.is_floating_point:
            found, where = declared, "the config's dtype"
            break
    if found is None:
        from sglang.model_loader.weights import checkpoint_float_dtype

        found, where = checkpoint_float_dtype(source), "the weights' dtype"
    if found is not None and found != torch.float32:
        return found, f"--dtype auto: {where}"
    if preferred is not None:
        return DTYPE_NAMES[preferred], (
            "--dtype auto: the checkpoint is float32 or quantized; the backend's preferred type"
        )
    return torch.float32, "--dtype auto: float32 (the backend prefers no other type)"


def _as_torch_dtype(value: Any) -> torch.dtype | None:
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, str):
        return DTYPE_NAMES.get(value.removeprefix("torch."))
    return None
