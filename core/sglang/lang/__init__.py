"""The frontend language: LLM programs that reuse the prefix cache.

    import sglang as sgl

    @sgl.function
    def classify(s, review):
        s += FEW_SHOT + "Review: " + review + "\\nSentiment:"
        s += sgl.select("label", choices=[" positive", " negative"])

    sgl.set_default_backend(sgl.RuntimeEndpoint("http://127.0.0.1:30000"))
    state = classify.run(review="A delight.")
    state["label"], state.cached_tokens

Only the standard library is imported here (jinja2 and gguf when a chat template is first
rendered; the engine only by `Runtime`).
"""

from sglang.lang.api import (
    assistant,
    assistant_begin,
    assistant_end,
    flush_cache,
    function,
    gen,
    gen_int,
    gen_string,
    get_default_backend,
    get_server_info,
    select,
    set_default_backend,
    system,
    system_begin,
    system_end,
    user,
    user_begin,
    user_end,
)
from sglang.lang.backend.base import Backend, FeatureUnavailable
from sglang.lang.backend.openai import OpenAI
from sglang.lang.backend.runtime import Runtime
from sglang.lang.backend.runtime_endpoint import RuntimeEndpoint
from sglang.lang.executor import ProgramError
from sglang.lang.function import SglFunction
from sglang.lang.state import ProgramState, ProgramStateGroup

__all__ = [
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
]
