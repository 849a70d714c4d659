"""Model loading: where a model is (source), what it is (config), its weights and tokenizer.

Nothing here touches an accelerator: tensors are made on the host, or on a device given as an
argument. transformers, safetensors, gguf and tokenizers are imported when first needed.
"""

from sglang.model_loader.config import ModelConfig, load_model_config
from sglang.model_loader.default_model import DefaultModelMissing, default_model_path
from sglang.model_loader.source import ModelSource, ModelSourceError, resolve_source
from sglang.model_loader.tokenizer import chat_template, generation_defaults, load_tokenizer
from sglang.model_loader.weights import (
    checkpoint_float_dtype,
    dummy_weights,
    iterate_weights,
    parameter_shapes,
)

__all__ = [
    "DefaultModelMissing",
    "ModelConfig",
    "ModelSource",
    "ModelSourceError",
    "chat_template",
    "checkpoint_float_dtype",
    "default_model_path",
    "dummy_weights",
    "generation_defaults",
    "iterate_weights",
    "load_model_config",
    "load_tokenizer",
    "parameter_shapes",
    "resolve_source",
]
