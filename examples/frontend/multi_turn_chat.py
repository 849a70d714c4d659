"""Multi-turn chat: system, user and assistant roles rendered with the model's chat template;
each turn's answer is a variable, and every turn reuses the conversation so far from the
prefix cache.

    python examples/frontend/multi_turn_chat.py --url http://127.0.0.1:30000
"""

from __future__ import annotations

import time

import sglang as sgl
from common import backend, parser


@sgl.function
def multi_turn(s, questions: list[str]):
    s += sgl.system("You are a helpful assistant. Answer in one or two sentences.")
    for i, question in enumerate(questions):
        s += sgl.user(question)
        s += sgl.assistant(sgl.gen(f"answer_{i}", max_tokens=48, temperature=0))


QUESTIONS = [
    "What is the largest planet in the solar system?",
    "How many moons does it have?",
    "Which of them is the biggest?",
]


def main(argv: list[str] | None = None) -> dict:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--stream", action="store_true", help="print the text as it is generated")
    args = p.parse_args(argv)
    be = backend(args)
    try:
        start = time.perf_counter()
        state = multi_turn.run(QUESTIONS, backend=be, stream=args.stream)
        if args.stream:
            for piece in state.text_iter():
                print(piece, end="", flush=True)
            print()
        for m in state.messages():
            print(f"{m['role']:>9}: {m['content']}")
        print(
            f"prompt tokens {state.prompt_tokens}, served from cache {state.cached_tokens}; "
            f"{time.perf_counter() - start:.2f} s"
        )
        return {"messages": state.messages(), "cached_tokens": state.cached_tokens}
    finally:
        be.shutdown()


if __name__ == "__main__":
    main()
