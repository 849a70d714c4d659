"""Every case id a conformance manifest may name: the op specs' cases, the communicator's and
the model-level checks'. A manifest entry matching none of them is an error."""

from __future__ import annotations


def known_case_ids() -> list[str]:
    from sglang.conformance.collectives import cases as collective_cases
    from sglang.conformance.model import case_ids as model_case_ids
    from sglang.ops.specs import all_specs

    ids = [c.id for s in all_specs() for c in s.cases()]
    ids += [check.case_id(dtype) for check, dtype in collective_cases()]
    return ids + model_case_ids()
