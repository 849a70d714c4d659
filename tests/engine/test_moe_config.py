"""A mixture-of-experts config the layer cannot serve stops the engine at startup with one error
naming the config field."""

from __future__ import annotations

import json
import os

import pytest
from sglang.engine.engine import Engine
from tiny_models import save_tiny_model


@pytest.mark.parametrize(
    "arch, field, value",
    [
        ("mixtral", "num_local_experts", 0),
        ("qwen3-moe", "num_experts_per_tok", 99),
        ("deepseek-v2", "topk_method", "sinkhorn"),
        ("deepseek-v3", "scoring_func", "sqrtsoftplus"),
        ("gpt-oss", "swiglu_limit", 5.0),  # moe.experts' swigluoai clamps at 7
    ],
)
def test_bad_moe_config_fails_at_startup_naming_the_field(tmp_path, arch, field, value):
    path = save_tiny_model(arch, str(tmp_path))
    config_file = os.path.join(path, "config.json")
    config = json.load(open(config_file))
    config[field] = value
    json.dump(config, open(config_file, "w"))
    with pytest.raises(Exception, match=rf"{field} = {value!r}") as info:
        Engine(
            model_path=path,
            device="reference",
            dtype="float32",
            skip_tokenizer_init=True,
            max_total_tokens=256,
            log_level="warning",
        )
    assert "\n" not in str(info.value)
