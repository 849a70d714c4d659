"""OpTable.kernel_needing: a layer that needs capability keys (attention sinks, gpt-oss's expert
activation) gets the serving backend's kernel for its configuration where that backend declares
the keys, else the reference kernel, never one that would be handed an argument it lacks."""

from __future__ import annotations

import logging

import pytest
from sglang.backend.selection import select_platform
from sglang.layers.ops_table import OpTable


@pytest.fixture(scope="module")
def xeon():
    try:
        return select_platform("xeon")
    except Exception as e:  # the backend is not available here
        pytest.skip(f"xeon: {e}")


def _named(platform, op: str, backend: str, name: str):
    kernels = platform.found.registry.kernels(op, backend)
    return next(k.fn for k in kernels if k.name == name)


def test_declared_keys_pick_the_backends_kernel_for_the_configuration(xeon):
    ops = OpTable(xeon)
    fn = ops.kernel_needing("attention.decode", ("attention:sinks",), {"sinks": True})
    # the xeon torch decode takes sinks; its native decode (chosen without them) does not
    assert fn is _named(xeon, "attention.decode", "xeon", "xeon.attention_decode")
    fn = ops.kernel_needing("moe.experts", ("moe:swigluoai", "moe:bias"))
    assert fn is _named(xeon, "moe.experts", "xeon", "xeon.moe_experts")


def test_a_missing_key_falls_back_to_the_reference_with_a_warning(xeon, caplog):
    ops = OpTable(xeon)
    with caplog.at_level(logging.WARNING, logger="sglang.layers.ops_table"):
        fn = ops.kernel_needing("attention.extend", ("attention:no-such-feature",))
    assert fn is _named(xeon, "attention.extend", "reference", "reference.attention.extend")
    assert "attention:no-such-feature" in caplog.text


def test_an_overridden_op_is_judged_by_the_backend_serving_it(xeon):
    ops = OpTable(select_platform("reference"), overrides={"attention.decode": "xeon"})
    fn = ops.kernel_needing("attention.decode", ("attention:sinks",), {"sinks": True})
    assert fn is _named(xeon, "attention.decode", "xeon", "xeon.attention_decode")
