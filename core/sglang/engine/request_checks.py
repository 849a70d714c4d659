"""The frontend's checks of a request before it goes to the scheduler (ValueError, which the
server answers with a 400): what the engine can tell without running the model."""

from __future__ import annotations

from sglang.engine.io import SchedulerInfo
from sglang.sampling.params import SamplingParams


def check_request(
    info: SchedulerInfo,
    has_tokenizer: bool,
    prompt_ids: list[int],
    params: SamplingParams,
    return_text_in_logprobs: bool,
    top_logprobs_num: int,
    priority: int | None,
) -> None:
    vocab = info.vocab_size
    if not prompt_ids:
        raise ValueError("the prompt is empty")
    context_len = info.context_len
    if context_len is not None and len(prompt_ids) >= context_len:
        raise ValueError(
            f"the prompt has {len(prompt_ids)} tokens; the context length is {context_len}"
        )
    if vocab is not None and any(t < 0 or t >= vocab for t in prompt_ids):
        raise ValueError(f"input_ids must be in [0, {vocab})")
    if (params.stop or params.stop_regex) and not has_tokenizer:
        raise ValueError(
            "stop strings and stop_regex need a tokenizer (the engine runs with "
            "skip_tokenizer_init)"
        )
    if return_text_in_logprobs and not has_tokenizer:
        raise ValueError("return_text_in_logprobs needs a tokenizer")
    if vocab is not None and not 0 <= top_logprobs_num <= vocab:
        raise ValueError(f"top_logprobs_num must be in [0, {vocab}], got {top_logprobs_num}")
    if priority is not None:
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise ValueError(f"priority must be an integer, got {priority!r}")
        if not info.settings.priority_scheduling:
            raise ValueError(
                "priority is not enabled on this server: start it with "
                "--enable-priority-scheduling (or --schedule-policy priority), or send the "
                "request without a priority"
            )
