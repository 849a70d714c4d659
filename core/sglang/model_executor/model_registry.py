"""Model architectures, keyed by Hugging Face `architectures` name, found through the
`sglang.models` entry-point group (first-party models and third-party packs alike). Each entry
point loads on its own; one that fails is recorded and reported only if that architecture is
asked for."""

from __future__ import annotations

import importlib.metadata as md
import logging
import traceback
from functools import lru_cache
from typing import Any

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "sglang.models"


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, md.EntryPoint]:
    return {ep.name: ep for ep in md.entry_points(group=ENTRY_POINT_GROUP)}


def supported_architectures() -> list[str]:
    return sorted(_entry_points())


def get_model_class(architectures: list[str] | None) -> type:
    """The class for the first supported name in `architectures`."""
    eps = _entry_points()
    for arch in architectures or []:
        ep = eps.get(arch)
        if ep is None:
            continue
        try:
            cls: Any = ep.load()
        except Exception as e:
            raise RuntimeError(
                f"model architecture {arch} ({ep.value}) failed to import:\n{traceback.format_exc()}"
            ) from e
        logger.info("architecture %s -> %s", arch, ep.value)
        return cls
    raise ValueError(
        f"unsupported model architecture(s) {architectures}; supported: "
        f"{', '.join(supported_architectures()) or 'none (is sglang-models installed?)'}"
    )
