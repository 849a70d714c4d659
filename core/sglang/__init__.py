"""sglang: a device-neutral LLM serving engine whose hardware comes from backend plugins."""

from sglang.version import __version__

__all__ = ["Engine", "__version__"]


def __getattr__(name: str):
    # Imported on first use so `import sglang` stays light (no torch, zmq or transformers).
    if name == "Engine":
        from sglang.engine.engine import Engine

        return Engine
    raise AttributeError(f"module 'sglang' has no attribute {name!r}")
