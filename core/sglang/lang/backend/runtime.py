"""`Runtime(...)`: an in-process engine (`sglang.Engine`) as a backend, no HTTP in between.
Its scheduler runs in a spawned child process, so create it under `if __name__ == "__main__"`."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

from sglang.lang.backend.native import NativeBackend
from sglang.lang.chat_template import ChatTemplate, from_tokenizer


class Runtime(NativeBackend):
    def __init__(self, model_path: str | None = None, device: str = "auto", **server_args: Any):
        """Arguments as `sglang.Engine` (server arguments by keyword)."""
        from sglang.engine.engine import Engine

        self.engine = Engine(model_path=model_path, device=device, **server_args)
        self._template: ChatTemplate | None = None
        self._lock = threading.Lock()

    # --- transport ----------------------------------------------------------------------------
    def _generate(self, body: dict[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
        return self.engine.generate(**_engine_kwargs(body))

    def _generate_stream(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return self.engine.generate(**_engine_kwargs(body), stream=True)

    def _tokenize(self, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
        tokenizer = self._tokenizer()
        return [list(tokenizer.encode(t, add_special_tokens=add_special_tokens)) for t in texts]

    def _tokenizer(self) -> Any:
        if self.engine.tokenizer is None:
            raise ValueError("the engine runs with skip_tokenizer_init: programs need text")
        return self.engine.tokenizer

    # --- the rest -------------------------------------------------------------------------------
    def chat_template(self) -> ChatTemplate:
        from sglang.model_loader import chat_template as model_chat_template

        with self._lock:
            if self._template is None:
                tokenizer = self._tokenizer()
                override = self.engine.args.chat_template
                if override and os.path.isfile(override):
                    with open(override, encoding="utf-8") as f:
                        override = f.read()
                template = override or model_chat_template(tokenizer, self.engine.args.model_path)
                if not template:
                    raise ValueError("the model has no chat template: pass chat_template=...")
                self._template = from_tokenizer(tokenizer, template)
            return self._template

    def flush_cache(self) -> bool:
        return self.engine.flush_cache()

    def get_server_info(self) -> dict[str, Any]:
        return {**self.engine.server_info, "scheduler": self.engine.get_stats()}

    def shutdown(self) -> None:
        self.engine.shutdown()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def _engine_kwargs(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt": body.get("text"),
        "input_ids": body.get("input_ids"),
        "sampling_params": body.get("sampling_params"),
        "return_logprob": body.get("return_logprob", False),
        "logprob_start_len": body.get("logprob_start_len"),
        "top_logprobs_num": body.get("top_logprobs_num", 0),
    }
