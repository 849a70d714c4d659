"""Few-shot sentiment classification: a long few-shot prompt shared by every program, then one
`select` per review. run_batch sends the shared prompt once, so the server's radix cache serves
it to all the programs; the report shows how many prompt tokens came from the cache.

    python examples/frontend/few_shot_classification.py --url http://127.0.0.1:30000
    python examples/frontend/few_shot_classification.py          # in-process engine
"""

from __future__ import annotations

import time

import sglang as sgl
from common import backend, parser

LABELS = [" positive", " negative"]

EXAMPLES = [
    ("The plot was gripping from the first scene to the last, and the cast was superb.", 0),
    ("I walked out after forty minutes; the dialogue was wooden and the pacing glacial.", 1),
    ("A warm, funny film that my whole family enjoyed on a rainy Sunday afternoon.", 0),
    ("The battery died within a week and customer support never answered my emails.", 1),
    ("Fresh ingredients, generous portions and the friendliest waiters in town.", 0),
    ("The soup was cold, the bread was stale and we waited an hour for the main course.", 1),
    ("This keyboard feels solid, the keys are quiet and the backlight is lovely.", 0),
    ("The screen cracked the first time I dropped it from a table. Very disappointing.", 1),
    ("An elegant, moving novel; I finished it in two nights and want to read it again.", 0),
    ("The characters were flat and the ending made no sense at all.", 1),
    ("Our hotel room had a stunning sea view, and breakfast was excellent every day.", 0),
    ("The room smelled of smoke, the shower leaked and the staff were rude.", 1),
    ("Setup took five minutes and the sound quality is far better than I expected.", 0),
    ("It stopped charging after two days and the refund process was a nightmare.", 1),
    ("A brilliant concert: the band played for three hours and the crowd loved it.", 0),
    ("The sound was muddy, the venue was overcrowded and the set lasted barely an hour.", 1),
    ("The course was clear, well paced and the exercises really helped me learn.", 0),
    ("The lectures rambled, the slides were full of errors and nobody graded our work.", 1),
    ("My new running shoes are light, comfortable and held up well on a marathon.", 0),
    ("The sole came apart after a month of gentle walks. Avoid these shoes.", 1),
]

TEST_REVIEWS = [
    ("An absolute joy to watch, with clever writing and a wonderful soundtrack.", 0),
    ("The blender broke on its second use and smelled of burning plastic.", 1),
    ("Kind staff, spotless rooms and a great location near the old town.", 0),
    ("Boring, predictable and far too long; I regret buying the ticket.", 1),
]


def few_shot_prefix(examples=EXAMPLES) -> str:
    lines = ["Classify the sentiment of each review as positive or negative.\n\n"]
    for text, label in examples:
        lines.append(f"Review: {text}\nSentiment:{LABELS[label]}\n\n")
    return "".join(lines)


FEW_SHOT = few_shot_prefix()


@sgl.function
def classify(s, review: str):
    s += FEW_SHOT
    s += "Review: " + review + "\nSentiment:"
    s += sgl.select("label", choices=LABELS)


def main(argv: list[str] | None = None) -> dict:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    be = backend(args)
    try:
        start = time.perf_counter()
        states = classify.run_batch(
            [{"review": text} for text, _ in TEST_REVIEWS], backend=be, progress_bar=True
        )
        elapsed = time.perf_counter() - start
        correct = 0
        for (text, label), state in zip(TEST_REVIEWS, states):
            got = state["label"]
            correct += got == LABELS[label]
            scores = state.get_meta_info("label")["normalized_prompt_logprobs"]
            print(f"{got.strip():>8}  {[round(x, 3) for x in scores]}  {text}")
        prompt = sum(s.prompt_tokens for s in states)
        cached = sum(s.cached_tokens for s in states)
        print(
            f"accuracy {correct}/{len(states)}; prompt tokens {prompt}, served from cache "
            f"{cached} ({cached / max(prompt, 1):.0%}); {elapsed:.2f} s"
        )
        return {"correct": correct, "prompt_tokens": prompt, "cached_tokens": cached}
    finally:
        be.shutdown()


if __name__ == "__main__":
    main()
