"""What the routes share: the frontend (TokenizerManager), the tokenizer and chat template, the
model's name and limits, and the metrics. Also the request helpers every route uses: prompt
checks, sampling-parameter errors as HTTP 400, metrics, and abort on client disconnect."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from jinja2 import TemplateError

from sglang.constrained import GrammarError
from sglang.engine.io import SchedulerInfo
from sglang.engine.records import GenerateResult
from sglang.engine.tokenizer_manager import TokenizerManager
from sglang.model_loader import chat_template as model_chat_template
from sglang.parsers.reasoning import (
    ReasoningParser,
    detect_reasoning_parser,
    get_reasoning_parser,
)
from sglang.parsers.tool import ALIASES, detect_tool_parser
from sglang.sampling.params import SamplingParams
from sglang.server.errors import APIError
from sglang.server.metrics import ServerMetrics
from sglang.server.streaming import Submission
from sglang.server_args import ServerArgs

DISCONNECT_POLL_S = 0.5
MAX_N = 128  # copies (n) of one prompt: OpenAI's bound; each copy is a request of its own
logger = logging.getLogger(__name__)


def state_of(request: Request) -> ServerState:
    return request.app.state.server


class ServerState:
    def __init__(
        self, args: ServerArgs, manager: TokenizerManager, info: SchedulerInfo, source: Any
    ):
        self.args, self.manager, self.info = args, manager, info
        self.tokenizer = manager.tokenizer
        self.model_name = args.served_model_name or os.path.basename(
            str(args.model_path).rstrip("/")
        )
        self.context_len: int = info.context_len
        self.metrics = ServerMetrics(self.model_name)
        self.chat_template = None
        if self.tokenizer is not None:
            if args.chat_template:
                template = args.chat_template
                if os.path.isfile(template):
                    with open(template, encoding="utf-8") as f:
                        template = f.read()
                self.chat_template = template
            else:
                self.chat_template = model_chat_template(self.tokenizer, source)
        self.sampling_defaults: dict[str, Any] = {}
        self.started = time.time()
        self.tool_call_parser = self._pick_tool_call_parser()
        self.reasoning_parser = self._pick_reasoning_parser()

    def _pick_tool_call_parser(self) -> str | None:
        """--tool-call-parser, or the format the chat template teaches (logged either way)."""
        name = self.args.tool_call_parser
        if name not in (None, "auto"):
            name = ALIASES.get(name, name)
            logger.info("tool-call parser: %s (--tool-call-parser)", name)
            return name
        name = detect_tool_parser(self.chat_template)
        if name is not None:
            logger.info("tool-call parser: %s (detected from the chat template)", name)
        elif self.chat_template is not None:
            logger.info(
                "tool-call parser: none (the chat template shows no known tool-call format; "
                "tools reach the template, calls are not parsed; see --tool-call-parser)"
            )
        return name

    def _pick_reasoning_parser(self) -> ReasoningParser | None:
        name = self.args.reasoning_parser
        if name == "auto":
            prompt = ""
            if self.chat_template is not None and "<think>" in self.chat_template:
                try:
                    prompt = self._render([{"role": "user", "content": "Hi"}])
                except Exception:  # a template that needs more than this: qwen3's rule
                    prompt = ""
            name = detect_reasoning_parser(self.chat_template, prompt)
            logger.info("reasoning parser: %s (detected from the chat template)", name)
        elif name is not None:
            logger.info("reasoning parser: %s (--reasoning-parser)", name)
        return None if name is None else get_reasoning_parser(name)

    # --- input checks ----------------------------------------------------------------------
    def check_model(self, model: str | None) -> None:
        if model and model not in (self.model_name, self.args.model_path, "default"):
            raise APIError(404, f"The model `{model}` does not exist.", "model", "model_not_found")

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        if self.tokenizer is None:
            raise APIError(400, "the server runs with --skip-tokenizer-init: send token ids")
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def render_chat(
        self, messages: list[dict], tools: list[dict] | None = None, **template_kwargs: Any
    ) -> list[int]:
        if self.tokenizer is None:
            raise APIError(
                400, "chat needs a tokenizer; the server runs with --skip-tokenizer-init"
            )
        if self.chat_template is None:
            raise APIError(400, "the model has no chat template; pass --chat-template")
        try:
            text = self._render(messages, tools=tools, **template_kwargs)
        except TemplateError as e:  # the template's own checks (raise_exception) included
            msg = f"the chat template rejected the messages: {e}"
            raise APIError(400, msg, "messages") from None
        return self.encode(text, add_special_tokens=False)

    def _render(self, messages: list[dict], continue_final_message: bool = False, **kw: Any) -> str:
        """continue_final_message: the last message is left open for the model to continue."""
        return self.tokenizer.apply_chat_template(
            messages,
            chat_template=self.chat_template,
            tokenize=False,
            add_generation_prompt=not continue_final_message,
            continue_final_message=continue_final_message,
            **kw,
        )

    def fit_prompt(self, ids: list[int], max_new_tokens: int | None) -> list[int]:
        """Prompts longer than the context are a 400, or cut with --allow-auto-truncate."""
        if not ids:
            raise APIError(400, "the prompt is empty", "prompt")
        vocab = self.info.vocab_size
        if vocab is not None and any(not 0 <= t < vocab for t in ids):
            raise APIError(400, f"input_ids must be in [0, {vocab})", "input_ids")
        if len(ids) >= self.context_len:
            if not self.args.allow_auto_truncate:
                raise APIError(
                    400,
                    f"This model's maximum context length is {self.context_len} tokens. "
                    f"However, your prompt has {len(ids)} tokens.",
                    "messages",
                    "context_length_exceeded",
                )
            ids = ids[: self.context_len - 1]
        if max_new_tokens is not None and len(ids) + max_new_tokens > self.context_len:
            if not self.args.allow_auto_truncate:
                raise APIError(
                    400,
                    f"This model's maximum context length is {self.context_len} tokens. "
                    f"However, you requested {len(ids) + max_new_tokens} tokens "
                    f"({len(ids)} in the prompt, {max_new_tokens} for the completion).",
                    "max_tokens",
                    "context_length_exceeded",
                )
        return ids

    def sampling_params(self, fields: dict[str, Any]) -> SamplingParams:
        try:
            params = SamplingParams.from_dict(
                {**self.sampling_defaults, **fields}, self.info.vocab_size
            )
            self.manager.check_constraint(params)
        except GrammarError as e:
            raise APIError(400, str(e), e.kind if e.kind in fields else None) from None
        except (ValueError, TypeError) as e:
            raise APIError(400, str(e)) from None
        if params.stop and self.tokenizer is None:
            raise APIError(400, "stop strings need a tokenizer", "stop")
        return params

    # --- generation ------------------------------------------------------------------------
    def generate(
        self, request: Request | None, prompt_ids: list[int], params: SamplingParams, **kw: Any
    ) -> Submission:
        """The manager's results, with metrics, and aborted when the client goes away. The
        request goes to the scheduler when they are first read, or at once through `started`
        (the streaming routes)."""
        return Submission(lambda: self._submit(request, prompt_ids, params, kw))

    def _submit(
        self, request: Request | None, prompt_ids: list[int], params: SamplingParams, kw: dict
    ) -> AsyncIterator[GenerateResult]:
        start = time.monotonic()
        try:
            results = self.manager.submit(prompt_ids, params, **kw)
        except ValueError as e:  # the frontend's own input checks
            raise APIError(400, str(e)) from None
        return self._observed(request, results, start)

    async def _observed(
        self, request: Request | None, gen: AsyncIterator[GenerateResult], start: float
    ) -> AsyncIterator[GenerateResult]:
        last = start
        prev_tokens = 0
        first, ttft = True, None
        try:
            while True:
                try:
                    chunk = await self._next_or_disconnect(request, gen)
                except ValueError as e:
                    raise APIError(400, str(e)) from None
                if chunk is None:
                    return
                now = time.monotonic()
                n = len(chunk.output_ids)
                if n > prev_tokens:
                    self.metrics.observe_chunk(first, now - last, n - prev_tokens)
                    ttft = now - start if first else ttft
                    first, last, prev_tokens = False, now, n
                if chunk.finish_reason is not None:
                    self.metrics.observe_finish(chunk, now - start, ttft)
                yield chunk
        finally:
            await gen.aclose()

    async def _next_or_disconnect(self, request: Request | None, gen) -> GenerateResult | None:
        """The next chunk; None when the generator ended. Raises ClientGone on disconnect."""
        if request is None:  # nothing to watch (streams: Starlette cancels on a disconnect)
            try:
                return await gen.__anext__()
            except StopAsyncIteration:
                return None
        step = asyncio.ensure_future(gen.__anext__())
        try:
            while True:
                done, _ = await asyncio.wait({step}, timeout=DISCONNECT_POLL_S)
                if done:
                    try:
                        return step.result()
                    except StopAsyncIteration:
                        return None
                if request is not None and await request.is_disconnected():
                    raise ClientGone()
        finally:
            if not step.done():
                step.cancel()
                try:
                    await step
                except (asyncio.CancelledError, StopAsyncIteration, ClientGone):
                    pass

    async def refresh_scheduler_gauges(self) -> dict:
        stats = (await self.manager.control("stats")).payload
        self.metrics.set_scheduler_stats(stats)
        return stats


class ClientGone(Exception):
    """The HTTP client disconnected; the request was aborted."""
