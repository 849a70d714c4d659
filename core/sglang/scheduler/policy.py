"""The order in which waiting requests are offered to a prefill (`--schedule-policy`), as in SGLang.

- fcfs: arrival order.
- lpm: longest cached prefix first (reuse before the cache evicts it).
- dfs-weight: a depth-first walk of the prefix tree, heavier subtrees (more waiting requests
  ending in them) first, so requests sharing a prefix are admitted together.
- lof: longest output first (largest max_new_tokens; none given counts as the longest). The
  requests that set a batch's length start first, which shortens the tail of an offline batch.
- random: a shuffle.
- priority: fcfs within priorities (SGLang's name for --enable-priority-scheduling with fcfs).

With `--enable-priority-scheduling` (implied by the priority policy) the requests' `priority`
orders the queue first: higher values first, or lower with
`--schedule-low-priority-values-first`; a request without one counts as 0; the policy orders
requests of equal priority. Running requests are not preempted for a higher priority.

The cache-aware policies (lpm, dfs-weight) cost a tree walk per request; beyond
CACHE_AWARE_MAX_QUEUE waiting requests they fall back to fcfs, as SGLang does. Sorts are
stable: ties keep arrival order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence

from sglang.cache.radix_cache import TreeNode
from sglang.scheduler.req import Req

CACHE_AWARE = ("lpm", "dfs-weight")
CACHE_AWARE_MAX_QUEUE = 128


def lof(waiting: Sequence[Req]) -> list[Req]:
    unbounded = float("inf")

    def new_tokens(r: Req) -> float:
        n = r.params.max_new_tokens
        return unbounded if n is None else n - len(r.output_ids)

    return sorted(waiting, key=lambda r: -new_tokens(r))


def lpm(waiting: Sequence[Req], match: Callable[[Req], tuple[int, TreeNode]]) -> list[Req]:
    matched = {id(r): match(r)[0] for r in waiting}
    return sorted(waiting, key=lambda r: -matched[id(r)])


def dfs_weight(
    waiting: Sequence[Req], match: Callable[[Req], tuple[int, TreeNode]], root: TreeNode
) -> list[Req]:
    """Requests grouped by the node their cached prefix ends in, the tree walked depth first
    with each node's children in descending weight (waiting requests at or below them); a
    node's own requests follow its subtree's, as in SGLang. Iterative: deep trees are fine."""
    ends = [(r, match(r)[1]) for r in waiting]  # matching may split nodes: walk after it
    at: dict[int, list[Req]] = defaultdict(list)
    weight: dict[int, int] = defaultdict(int)
    for r, node in ends:
        at[id(node)].append(r)
        while node is not None:  # each ancestor's weight counts the request
            weight[id(node)] += 1
            node = node.parent
    order: list[Req] = []
    stack: list[tuple[TreeNode, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.extend(at.get(id(node), ()))
            continue
        stack.append((node, True))
        kids = [c for c in node.children.values() if weight.get(id(c))]
        kids.sort(key=lambda c: -weight[id(c)])
        stack.extend((c, False) for c in reversed(kids))  # heaviest popped first
    if len(order) < len(waiting):  # a node no longer under the root: never drop its requests
        placed = {id(r) for r in order}
        order.extend(r for r in waiting if id(r) not in placed)
    return order


def by_priority(order: list[Req], low_values_first: bool) -> list[Req]:
    """`order` stably sorted by the requests' priority (None as 0)."""
    sign = 1 if low_values_first else -1
    return sorted(order, key=lambda r: sign * (r.priority or 0))


def order_waiting(
    policy: str,
    waiting: Sequence[Req],
    match: Callable[[Req], tuple[int, TreeNode]] | None,
    root: TreeNode | None,
    rng: random.Random,
) -> list[Req]:
    """`waiting` in the order `policy` offers it to the next prefill. match(req) gives the
    request's cached prefix length and the node it ends in; None (and root None) when there
    is no prefix cache, where the cache-aware policies are fcfs."""
    if policy in CACHE_AWARE and (match is None or len(waiting) > CACHE_AWARE_MAX_QUEUE):
        return list(waiting)
    if policy == "lpm":
        return lpm(waiting, match)
    if policy == "dfs-weight":
        return dfs_weight(waiting, match, root)
    if policy == "lof":
        return lof(waiting)
    if policy == "random":
        shuffled = list(waiting)
        rng.shuffle(shuffled)
        return shuffled
    return list(waiting)
