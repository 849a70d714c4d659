"""Architectures come from the `sglang.models` entry points; unknown ones fail clearly; a
model loads with --load-format dummy from a bare config.json."""

from __future__ import annotations

import json
import sys

import pytest
from sglang.model_executor.model_registry import get_model_class, supported_architectures

FIRST_PARTY = {
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "Gemma2ForCausalLM",
}


def test_first_party_architectures_are_registered():
    assert FIRST_PARTY <= set(supported_architectures())
    assert get_model_class(["NotAModel", "Qwen3ForCausalLM"]).__name__ == "Qwen3ForCausalLM"


def test_unknown_architecture_names_the_supported_ones():
    with pytest.raises(ValueError, match="unsupported model architecture.*LlamaForCausalLM"):
        get_model_class(["FancyNewForCausalLM"])


def test_dummy_weights_from_a_bare_config(tmp_path):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "engine"))
    from tiny_models import configs

    config = configs()["qwen3"].to_dict()
    (tmp_path / "config.json").write_text(json.dumps(config))
    from sglang.engine.engine import Engine

    with Engine(
        model_path=str(tmp_path),
        load_format="dummy",
        device="xeon",
        dtype="float32",
        skip_tokenizer_init=True,
        max_total_tokens=512,
        log_level="warning",
    ) as e:
        out = e.generate(
            input_ids=[1, 2, 3], sampling_params={"max_new_tokens": 4, "temperature": 0}
        )
    assert len(out["output_ids"]) == 4
