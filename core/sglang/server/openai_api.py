"""OpenAI-compatible routes: /v1/chat/completions (openai_chat.py), /v1/completions
(openai_completions.py), /v1/models."""

from __future__ import annotations

from fastapi import APIRouter, Request

from sglang.server import openai_chat, openai_completions
from sglang.server.state import state_of

router = APIRouter()
router.include_router(openai_chat.router)
router.include_router(openai_completions.router)


@router.get("/v1/models")
async def models(request: Request):
    state = state_of(request)
    return {
        "object": "list",
        "data": [
            {
                "id": state.model_name,
                "object": "model",
                "created": int(state.started),
                "owned_by": "sglang",
                "root": state.args.model_path,
                "max_model_len": state.context_len,
            }
        ],
    }
