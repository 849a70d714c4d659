"""`RuntimeEndpoint(url)`: a running sglang server, through its native routes (/generate,
/tokenize, /get_model_info, /get_server_info, /flush_cache)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

from sglang.lang.backend.http import JSONClient
from sglang.lang.backend.native import NativeBackend
from sglang.lang.chat_template import ChatTemplate, load_model_template


class RuntimeEndpoint(NativeBackend):
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        chat_template: str | None = None,
        timeout: float = 3600,
    ):
        """base_url: e.g. http://127.0.0.1:30000. chat_template: a template string or file,
        for servers whose model files are not on this machine (otherwise it is read from
        them, or from the server's --chat-template)."""
        self.base_url = base_url.rstrip("/")
        self.client = JSONClient(self.base_url, api_key, timeout)
        self.model_info: dict[str, Any] = self.client.get("/get_model_info")
        self._template_override = chat_template
        self._template: ChatTemplate | None = None
        self._lock = threading.Lock()

    def get_model_name(self) -> str:
        return self.model_info.get("served_model_name") or self.model_info["model_path"]

    # --- transport ----------------------------------------------------------------------------
    def _generate(self, body: dict[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
        return self.client.post("/generate", body)

    def _generate_stream(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return self.client.post_sse("/generate", {**body, "stream": True})

    def _tokenize(self, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
        reply = self.client.post(
            "/tokenize", {"prompt": texts, "add_special_tokens": add_special_tokens}
        )
        return reply["tokens"]

    # --- the rest -------------------------------------------------------------------------------
    def chat_template(self) -> ChatTemplate:
        with self._lock:
            if self._template is None:
                override = self._template_override
                if override is None:
                    override = self.get_server_info().get("chat_template")
                    if override and "{" not in override and not os.path.isfile(override):
                        raise ValueError(
                            f"the server's --chat-template {override!r} is not a file here: "
                            "pass chat_template= (the template or a local file)"
                        )
                path = self.model_info.get("tokenizer_path") or self.model_info["model_path"]
                self._template = load_model_template(path, override)
            return self._template

    def flush_cache(self) -> bool:
        self.client.post("/flush_cache", {})
        return True

    def get_server_info(self) -> dict[str, Any]:
        return self.client.get("/get_server_info")
