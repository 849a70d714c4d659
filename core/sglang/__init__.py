"""sglang: a device-neutral LLM serving engine whose hardware comes from backend plugins."""

from sglang.version import __version__

# The frontend language (`sglang.lang`), re-exported as in SGLang: `import sglang as sgl`.
LANG_NAMES = (
    "Backend",
    "FeatureUnavailable",
    "OpenAI",
    "ProgramError",
    "ProgramState",
    "ProgramStateGroup",
    "Runtime",
    "RuntimeEndpoint",
    "SglFunction",
    "assistant",
    "assistant_begin",
    "assistant_end",
    "flush_cache",
    "function",
    "gen",
    "gen_int",
    "gen_string",
    "get_default_backend",
    "get_server_info",
    "select",
    "set_default_backend",
    "system",
    "system_begin",
    "system_end",
    "user",
    "user_begin",
    "user_end",
)

__all__ = ["Engine", "__version__", *LANG_NAMES]


def __getattr__(name: str):
    # Imported on first use so `import sglang` stays light (no torch, zmq or transformers).
    if name == "Engine":
        from sglang.engine.engine import Engine

        return Engine
    if name in LANG_NAMES:
        import sglang.lang

        return getattr(sglang.lang, name)
    raise AttributeError(f"module 'sglang' has no attribute {name!r}")
