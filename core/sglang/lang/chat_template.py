"""Roles rendered with the model's chat template.

A program's text grows by appending, so a role is rendered as the text to put before its
content (prefix) and after it (suffix). Both come from the template itself: the history plus a
message whose content is a sentinel is rendered, the rendering of the history alone is cut off
its front, and the rest is split at the sentinel. Whatever the template adds (a default system
prompt, BOS, separators) lands in the text exactly where `apply_chat_template` puts it.

Templates render through the tokenizer's `apply_chat_template` when a tokenizer is loaded (the
in-process Runtime), or from the template string with jinja2 as transformers does (the HTTP
backends, which should not spend seconds loading a tokenizer): both give the same text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

SENTINEL = "\u2063sglang-role-content\u2063"  # no whitespace: templates that trim keep it

Render = Callable[[list[dict[str, Any]]], str]


class ChatTemplate:
    def __init__(self, render: Render, bos_token: str | None = None, name: str = "model"):
        """render(messages) -> text, without a generation prompt. bos_token: the token text
        the tokenizer puts in front of what it encodes, None when it adds none."""
        self._render, self.bos_token, self.name = render, bos_token or None, name

    def role_parts(self, role: str, history: list[dict[str, Any]]) -> tuple[str, str]:
        """(prefix, suffix) of a `role` message that follows `history`."""
        try:
            base = self._render(history) if history else ""
            full = self._render([*history, {"role": role, "content": SENTINEL}])
        except Exception as e:  # jinja's TemplateError, or raise_exception() in the template
            raise ValueError(
                f"the {self.name} chat template cannot render a {role!r} message after "
                f"{[m['role'] for m in history]}: {e}"
            ) from e
        start = len(base) if full.startswith(base) else len(os.path.commonprefix([base, full]))
        chunk = full[start:]
        i = chunk.find(SENTINEL)
        if i < 0:
            raise ValueError(f"the {self.name} chat template drops the content of {role!r}")
        return chunk[:i], chunk[i + len(SENTINEL) :]

    def starts_with_bos(self, text: str) -> bool:
        """Whether `text` starts with the BOS the tokenizer would add (so encoding it must
        not add another)."""
        return bool(self.bos_token) and text.startswith(self.bos_token)


def from_tokenizer(tokenizer: Any, template: str | None = None) -> ChatTemplate:
    """A template rendered by `tokenizer.apply_chat_template` (template: override string)."""

    def render(messages: list[dict[str, Any]]) -> str:
        return tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=False
        )

    bos = getattr(tokenizer, "bos_token", None)
    adds = bos and tokenizer.encode("a") != tokenizer.encode("a", add_special_tokens=False)
    return ChatTemplate(render, bos if adds else None)


def from_jinja(
    template: str,
    bos_token: str | None = None,
    eos_token: str | None = None,
    adds_bos: bool = True,
) -> ChatTemplate:
    """A template string rendered with jinja2 in transformers' environment (sandboxed,
    trim_blocks, lstrip_blocks, loop controls, tojson, raise_exception, strftime_now).
    adds_bos: whether the tokenizer adds bos_token when encoding (unknown: True)."""
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    compiled = env.from_string(template)

    def render(messages: list[dict[str, Any]]) -> str:
        return compiled.render(
            messages=messages,
            add_generation_prompt=False,
            bos_token=bos_token or "",
            eos_token=eos_token or "",
        )

    return ChatTemplate(render, bos_token if adds_bos else None)


def plain() -> ChatTemplate:
    """`ROLE: content` lines: the text of programs on chat-only APIs, which take messages."""

    def render(messages: list[dict[str, Any]]) -> str:
        return "".join(f"{m['role'].upper()}: {m['content']}\n" for m in messages)

    return ChatTemplate(render, None, "plain")


def load_model_template(path: str, override: str | None = None) -> ChatTemplate:
    """The chat template of the model (GGUF file or Hugging Face directory) at a local path.

    override: a template string or a file holding one (the server's --chat-template)."""
    template, bos, eos, adds_bos = _read_template_files(path)
    if override:
        if os.path.isfile(override):
            with open(override, encoding="utf-8") as f:
                override = f.read()
        template = override
    if not template:
        raise ValueError(
            f"the model at {path} has no chat template: pass chat_template= to the backend"
        )
    return from_jinja(template, bos, eos, adds_bos)


def _read_template_files(path: str) -> tuple[str | None, str | None, str | None, bool]:
    """(template, bos_token, eos_token, adds_bos) from a model's files, without a tokenizer."""
    if os.path.isfile(path) and path.endswith(".gguf"):
        return _read_gguf(path)
    if not os.path.isdir(path):
        raise ValueError(
            f"the model path {path!r} is not on this machine, so its chat template cannot be "
            "read: pass chat_template= (the template string or a file) to the backend"
        )
    config: dict[str, Any] = {}
    config_path = os.path.join(path, "tokenizer_config.json")
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        named = {t.get("name"): t.get("template") for t in template}
        template = named.get("default") or next(iter(named.values()), None)
    for name in ("chat_template.jinja", "chat_template.json"):
        file = os.path.join(path, name)
        if not template and os.path.isfile(file):
            with open(file, encoding="utf-8") as f:
                text = f.read()
            template = json.loads(text)["chat_template"] if name.endswith(".json") else text
    bos, eos = _token_text(config.get("bos_token")), _token_text(config.get("eos_token"))
    return template, bos, eos, config.get("add_bos_token", True) is not False


def _token_text(token: Any) -> str | None:
    return token.get("content") if isinstance(token, dict) else token


def _read_gguf(path: str) -> tuple[str | None, str | None, str | None, bool]:
    from sglang.lang.gguf_metadata import read_metadata

    ids_keys = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"}
    scalars = read_metadata(
        path, {"tokenizer.chat_template", "tokenizer.ggml.add_bos_token", *ids_keys}, {}
    )
    wanted = {int(scalars[k]) for k in ids_keys if k in scalars}
    tokens = read_metadata(path, set(), {"tokenizer.ggml.tokens": wanted}).get(
        "tokenizer.ggml.tokens", {}
    )

    def token(key: str) -> str | None:
        return tokens.get(int(scalars[key])) if key in scalars else None

    adds_bos = bool(scalars.get("tokenizer.ggml.add_bos_token"))
    bos, eos = token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id")
    return scalars.get("tokenizer.chat_template"), bos, eos, adds_bos
