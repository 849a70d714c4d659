"""The other backends on the same model: the in-process Runtime (Engine) decides like the HTTP
endpoint, and the OpenAI backend drives our /v1 routes, raising a clear error for select."""

from __future__ import annotations

import pytest
import sglang as sgl

CHOICES = [" positive", " negative"]


@sgl.function
def classify(s, review):
    s += "Review: The food was wonderful and the staff were kind.\nSentiment: positive\n\n"
    s += "Review: " + review + "\nSentiment:"
    s += sgl.select("label", choices=CHOICES)


@sgl.function
def chat(s, question):
    s += sgl.system("You answer briefly.")
    s += sgl.user(question)
    s += sgl.assistant(sgl.gen("answer", max_tokens=10, temperature=0))


REVIEWS = [{"review": "Cold soup and a rude waiter."}, {"review": "A lovely evening."}]


def test_in_process_runtime_matches_the_endpoint(backend):
    from sglang.model_loader import DefaultModelMissing, default_model_path

    try:
        default_model_path()
    except DefaultModelMissing as e:
        pytest.skip(str(e))
    want = [s.get_meta_info("label") for s in classify.run_batch(REVIEWS, backend=backend)]
    want_chat = chat.run("Name a primary colour.", backend=backend)["answer"]
    # float32, as the endpoint (tests/lang/conftest.py): scores compared to 2e-3
    with sgl.Runtime(
        device="xeon", dtype="float32", max_total_tokens=4096, log_level="warning"
    ) as runtime:
        got = [s.get_meta_info("label") for s in classify.run_batch(REVIEWS, backend=runtime)]
        got_chat = chat.run("Name a primary colour.", backend=runtime)
    for g, w in zip(got, want):
        assert g["normalized_prompt_logprobs"] == pytest.approx(
            w["normalized_prompt_logprobs"], abs=2e-3
        )
    assert got_chat["answer"] == want_chat
    assert got_chat.cached_tokens >= 0


def test_openai_backend_chat_and_completion(url, backend):
    model = backend.get_model_name()
    openai_chat = sgl.OpenAI(model, base_url=url + "/v1", api_key="none")
    got = chat.run("Name a primary colour.", backend=openai_chat)
    assert got["answer"] == chat.run("Name a primary colour.", backend=backend)["answer"]
    assert got.messages()[-1]["role"] == "assistant"
    streamed = chat.run("Name a primary colour.", backend=openai_chat, stream=True)
    assert "".join(streamed.text_iter("answer")) == got["answer"]

    completion = sgl.OpenAI(model, base_url=url + "/v1", api_key="none", is_chat_model=False)

    @sgl.function
    def complete(s):
        s += "The capital of France is" + sgl.gen("city", max_tokens=4, temperature=0)

    assert complete.run(backend=completion)["city"] == complete.run(backend=backend)["city"]


def test_openai_backend_select_names_the_missing_feature(url, backend):
    model = backend.get_model_name()
    for is_chat in (False, True):
        be = sgl.OpenAI(model, base_url=url + "/v1", api_key="none", is_chat_model=is_chat)
        with pytest.raises(sgl.ProgramError) as info:
            classify.run(review="Great.", backend=be)
        cause = info.value.__cause__
        assert isinstance(cause, sgl.FeatureUnavailable)
        assert "log-likelihood of prompt tokens" in str(cause) and "echo" in str(cause)


def test_openai_backend_json_schema_goes_as_response_format(url, backend, constrained):
    if not constrained:
        pytest.skip("the server does not constrain generation yet (structured outputs)")
    import json

    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string", "maxLength": 12}},
        "required": ["colour"],
        "additionalProperties": False,
    }

    @sgl.function
    def pick(s):
        s += sgl.user("Give a colour as JSON.")
        s += sgl.assistant(sgl.gen("json", max_tokens=24, temperature=0, json_schema=schema))

    be = sgl.OpenAI(backend.get_model_name(), base_url=url + "/v1", api_key="none")
    assert set(json.loads(pick.run(backend=be)["json"])) == {"colour"}
