"""Gated activations over `act.silu_mul` / `act.gelu_mul`."""

from __future__ import annotations

from sglang.layers.ops_table import OpTable

GELU_TANH = ("gelu_pytorch_tanh", "gelu_new", "gelu_fast")


def gated_activation(ops: OpTable, hidden_act: str):
    """The gated activation for a Hugging Face `hidden_act` name, as a function of [T, 2I]."""
    if hidden_act in ("silu", "swish"):
        return lambda x: ops.silu_mul(x=x)
    if hidden_act in GELU_TANH:
        return lambda x: ops.gelu_mul(x=x, approximate="tanh")
    if hidden_act == "gelu":
        return lambda x: ops.gelu_mul(x=x, approximate="none")
    raise ValueError(f"unsupported hidden_act {hidden_act!r}")
