"""sglang: a device-neutral LLM serving engine whose hardware comes from backend plugins."""

from sglang.version import __version__

__all__ = ["__version__"]
