"""Model loading: where a model is (source), what it is (config), its weights and tokenizer.

Nothing here touches an accelerator: tensors are made on the host, or on a device given as an
argument. transformers, safetensors, gguf and tokenizers are imported when first needed.
"""

from importlib import import_module

# Imported on first use (PEP 562), so the startup checks read a model path without torch.
_HOMES = {
    "ModelConfig": "config",
    "load_model_config": "config",
    "DefaultModelMissing": "default_model",
    "default_model_path": "default_model",
    "ModelSource": "source",
    "ModelSourceError": "source",
    "resolve_source": "source",
    "chat_template": "tokenizer",
    "generation_defaults": "tokenizer",
    "sampling_defaults": "tokenizer",
    "load_tokenizer": "tokenizer",
    "checkpoint_float_dtype": "weights",
    "dummy_weights": "weights",
    "iterate_weights": "weights",
    "parameter_shapes": "weights",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


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
    "sampling_defaults",
]
