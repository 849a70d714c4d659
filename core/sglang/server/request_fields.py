"""Which request fields of upstream SGLang's API this server serves, and which it refuses.

A field is served, informational (it cannot change the answer: a log or routing hint), or
refused: accepted only with a value that asks for nothing (null, false, empty, its default),
else a 400 naming it. A name the API does not know at all is a 400 too. So no field is
silently dropped. Sampling fields are judged by SamplingParams (its REFUSED table).
"""

from __future__ import annotations

from typing import Any

from sglang.server.errors import APIError

NOTHING = (None, False, "", [], {})  # the values that ask for nothing, for most fields

# /generate (upstream's GenerateReqInput)
GENERATE_SERVED = {
    "text",
    "input_ids",
    "sampling_params",
    "rid",
    "stream",
    "return_logprob",
    "logprob_start_len",
    "top_logprobs_num",
    "return_text_in_logprobs",
    "priority",  # with --enable-priority-scheduling; else a 400
}
GENERATE_INFORMATIONAL = {
    "log_metrics",
    "no_logs",
    "custom_labels",
    "external_trace_header",
    "received_time",
    "routing_key",
    "conversation_id",
    "http_worker_ipc",
}
GENERATE_REFUSED: dict[str, tuple[Any, ...]] = {
    name: NOTHING
    for name in (
        "session_id input_embeds image_data video_data audio_data mm_hashes mm_content_hashes "
        "use_audio_in_video video_config watermark token_ids_logprob return_sampling_mask "
        "sampling_logprobs_mode return_flat_raw_top_logprobs return_flat_raw_output_top_logprobs "
        "return_hidden_states return_routed_experts return_indexer_topk modalities "
        "session_params lora_path lora_id custom_logit_processor positional_embed_overrides "
        "bootstrap_host bootstrap_port bootstrap_room bootstrap_pair_key decode_tp_size "
        "routed_dp_rank data_parallel_rank disagg_prefill_dp_rank background "
        "require_reasoning max_thinking_tokens extra_key return_bytes return_entropy "
        "return_prompt_token_ids need_wait_for_mm_inputs num_items_assigned encoder_urls "
        "max_dynamic_patch min_dynamic_patch image_max_dynamic_patch video_max_dynamic_patch "
        "images_config mm_processor_kwargs multi_item_delimiter_indices token_indices_to_pool "
        "cache_salt kv_hints"
    ).split()
}
GENERATE_REFUSED["routed_experts_start_len"] = (None, 0)

# The OpenAI routes: OpenAI's own fields and SGLang's extras that this server does not serve.
OPENAI_REFUSED: dict[str, tuple[Any, ...]] = {
    name: NOTHING
    for name in (
        "return_hidden_states return_routed_experts return_cached_tokens_details "
        "return_spec_tokens_details return_prompt_token_ids return_token_ids return_meta_info "
        "return_input_ids_in_sglext return_output_ids_in_sglext return_sampling_mask "
        "sampling_logprobs_mode return_flat_raw_output_top_logprobs lora_path session_id "
        "session_params custom_logit_processor custom_params watermark images_config "
        "video_config mm_processor_kwargs max_dynamic_patch min_dynamic_patch "
        "use_audio_in_video data_parallel_rank extra_key cache_salt input_ids "
        "thinking task audio prediction web_search_options functions "
        "function_call store verbosity"
    ).split()
}
OPENAI_REFUSED["routed_experts_start_len"] = (None, 0)
OPENAI_REFUSED["modalities"] = (None, [], ["text"])
OPENAI_REFUSED["service_tier"] = (None, "auto", "default")
OPENAI_INFORMATIONAL = {
    "user",
    "metadata",
    "safety_identifier",
    "prompt_cache_key",
    "custom_labels",
}


def refuse_unserved(body: dict[str, Any], refused: dict[str, tuple[Any, ...]], route: str) -> None:
    """A 400 naming the first field of `refused` in `body` whose value asks for something."""
    asking = [n for n in body if n in refused and not any(_same(body[n], v) for v in refused[n])]
    if asking:
        name = min(asking, key=list(refused).index)
        raise APIError(
            400, f"{name} is not supported by this server ({route}), got {body[name]!r}", name
        )


def refuse_unknown(names: set[str], known: set[str], route: str) -> None:
    unknown = sorted(names - known)
    if unknown:
        raise APIError(
            400, f"unrecognized request argument(s) for {route}: {', '.join(unknown)}", unknown[0]
        )


GENERATE_KNOWN = frozenset(GENERATE_SERVED | GENERATE_INFORMATIONAL | set(GENERATE_REFUSED))


def check_generate_body(body: dict[str, Any]) -> None:
    """/generate's top-level fields: served, informational, or refused by name."""
    refuse_unserved(body, GENERATE_REFUSED, "/generate")
    if not GENERATE_KNOWN.issuperset(body):
        refuse_unknown(set(body), GENERATE_KNOWN, "/generate")


def _same(value: Any, inert: Any) -> bool:
    if isinstance(inert, bool) or isinstance(value, bool):
        return value is inert
    return type(value) is type(inert) and value == inert
