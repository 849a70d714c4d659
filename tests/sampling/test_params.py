"""SamplingParams: every field upstream SGLang accepts is served or refused by name."""

from __future__ import annotations

import pytest
from sglang.sampling.params import REFUSED, SamplingParams

# upstream SGLang 0.5.23's SamplingParams API fields (its sampling_params.py)
UPSTREAM_FIELDS = (
    "max_new_tokens stop stop_token_ids stop_regex temperature top_p top_k min_p "
    "frequency_penalty presence_penalty repetition_penalty min_new_tokens n beam_width "
    "json_schema regex ebnf structural_tag ignore_eos skip_special_tokens "
    "spaces_between_special_tokens no_stop_trim stream_interval logit_bias sampling_seed "
    "custom_params watermark"
).split()


def test_every_upstream_field_is_known():
    served = set(SamplingParams.__dataclass_fields__)
    assert [f for f in UPSTREAM_FIELDS if f not in served and f not in REFUSED] == []


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_fields_pass_when_they_ask_for_nothing(name):
    for inert in REFUSED[name][0]:
        SamplingParams.from_dict({name: inert})


@pytest.mark.parametrize(
    "name, value",
    [
        ("structural_tag", '{"type": "structural_tag"}'),
        ("custom_params", {"k": 1}),
        ("beam_width", 4),
        ("watermark", {"key": 1}),
    ],
)
def test_refused_fields_name_themselves(name, value):
    with pytest.raises(ValueError, match=name):
        SamplingParams.from_dict({name: value})


def test_stop_regex_takes_a_string_or_a_list():
    assert SamplingParams.from_dict({"stop_regex": r"\d+"}).stop_regex == [r"\d+"]
    assert SamplingParams.from_dict({"stop_regex": ["a", "", "b"]}).stop_regex == ["a", "b"]
    assert SamplingParams.from_dict({"stop_regex": None}).stop_regex == []


@pytest.mark.parametrize(
    "value, problem",
    [
        ("(", "not a valid regex"),
        (5, "string or a list"),
        (["x"] * 33, "at most 32"),
        ("a" * 300, "byte limit"),
    ],
)
def test_bad_stop_regex_is_refused_by_name(value, problem):
    with pytest.raises(ValueError, match=f"stop_regex.*{problem}"):
        SamplingParams.from_dict({"stop_regex": value})


def test_stream_interval_and_seed_are_checked():
    assert SamplingParams.from_dict({"stream_interval": 4}).stream_interval == 4
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="stream_interval"):
            SamplingParams.from_dict({"stream_interval": bad})
    with pytest.raises(ValueError, match="sampling_seed"):
        SamplingParams.from_dict({"sampling_seed": "7"})


def test_unknown_fields_are_refused_by_name():
    with pytest.raises(ValueError, match="temprature"):
        SamplingParams.from_dict({"temprature": 0.5})
