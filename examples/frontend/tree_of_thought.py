"""Tree of thought with fork: propose several first steps, let each branch continue its own
reasoning, score every branch with a yes/no `select`, and answer from the best one. The
branches run at the same time (the server batches them) and share the question's tokens
through the prefix cache: fork sends the text so far once before branching.

    python examples/frontend/tree_of_thought.py --url http://127.0.0.1:30000
"""

from __future__ import annotations

import time

import sglang as sgl
from common import backend, parser

QUESTION = "A farmer has 17 sheep. All but 9 run away. How many sheep does the farmer have left?"


@sgl.function
def tree_of_thought(s, question: str, branches: int = 3, steps: int = 2):
    s += sgl.system("You are a careful assistant who reasons step by step.")
    s += sgl.user(question)
    s += sgl.assistant_begin()
    s += "Let me think.\n"
    forks = s.fork(branches)
    forks += lambda i: f"Approach {i + 1}: "
    forks += sgl.gen("first_step", max_tokens=32, stop="\n", temperature=0.8)
    subtrees = [f.fork(steps) for f in forks]  # each waits for its own first step only
    for sub in subtrees:
        sub += "\nNext: " + sgl.gen("next_step", max_tokens=24, stop="\n", temperature=0.8)
    for sub in subtrees:
        sub.join()
    forks += "\nIs this reasoning correct?" + sgl.select("verdict", choices=[" yes", " no"])
    forks.join()
    scores = [m["normalized_prompt_logprobs"][0] for m in s.get_meta_info("verdict")]
    best = max(range(branches), key=lambda i: scores[i])
    s["best"] = best
    s += f"Approach {best + 1}: {s['first_step'][best]}\nSo the answer is"
    s += sgl.gen("answer", max_tokens=16, stop="\n", temperature=0)
    s += sgl.assistant_end()


def main(argv: list[str] | None = None) -> dict:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--branches", type=int, default=3)
    args = p.parse_args(argv)
    be = backend(args)
    try:
        start = time.perf_counter()
        state = tree_of_thought.run(QUESTION, branches=args.branches, backend=be)
        elapsed = time.perf_counter() - start
        for i, (step, verdict) in enumerate(zip(state["first_step"], state["verdict"])):
            print(f"branch {i + 1}: {step.strip()!r} -> correct?{verdict}")
        print(f"best branch {state['best'] + 1}; answer: {state['answer'].strip()!r}")
        print(
            f"prompt tokens {state.prompt_tokens}, served from cache {state.cached_tokens} "
            f"({state.cached_tokens / max(state.prompt_tokens, 1):.0%}); {elapsed:.2f} s"
        )
        return {"answer": state["answer"], "branches": len(state["first_step"])}
    finally:
        be.shutdown()


if __name__ == "__main__":
    main()
