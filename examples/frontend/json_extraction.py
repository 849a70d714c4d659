"""JSON extraction with a schema: the server constrains the generation to the JSON schema, so
the output always parses and has the fields asked for.

    python examples/frontend/json_extraction.py --url http://127.0.0.1:30000
"""

from __future__ import annotations

import json
import time

import sglang as sgl
from common import backend, parser

PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "city": {"type": "string", "maxLength": 40},
    },
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}

TEXTS = [
    "Maria Lopez is 34 years old and has lived in Valencia since she was a child.",
    "At 71, retired engineer Tom Becker still cycles around Hamburg every morning.",
]


@sgl.function
def extract_person(s, text: str):
    s += sgl.user("Extract the person's name, age and city from the text as JSON.\n\nText: " + text)
    s += sgl.assistant(sgl.gen("person", max_tokens=96, temperature=0, json_schema=PERSON_SCHEMA))


def main(argv: list[str] | None = None) -> dict:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    be = backend(args)
    try:
        start = time.perf_counter()
        states = extract_person.run_batch([{"text": t} for t in TEXTS], backend=be)
        people = []
        for text, state in zip(TEXTS, states):
            try:
                person = json.loads(state["person"])
            except json.JSONDecodeError:
                raise SystemExit(
                    f"the output is not JSON: {state['person']!r}; does the server support "
                    "json_schema (structured outputs)?"
                ) from None
            people.append(person)
            print(f"{text}\n  -> {json.dumps(person)}")
        print(f"{time.perf_counter() - start:.2f} s")
        return {"people": people}
    finally:
        be.shutdown()


if __name__ == "__main__":
    main()
