"""Upstream SGLang's frontend language through RuntimeEndpoint(URL): gen with stop and
stop_regex, select (its token-healing logprob request), fork, regex, streaming and run_batch.
Prints one JSON line of results after RESULT: for tests/server/test_upstream_client.py."""

import json
import sys

import prelude  # noqa: F401
import sglang as sgl

QUESTION = "What is the capital of France?"
STOP_REGEX = r"[.!?\n]"


@sgl.function
def answer(s, question):
    s += "Q: " + question + "\nA:"
    s += sgl.gen("answer", max_tokens=24, temperature=0, stop_regex=STOP_REGEX)


@sgl.function
def choose(s):
    s += "Q: " + QUESTION + "\nA: The capital of France is"
    s += sgl.select("city", choices=[" Paris", " Banana", " Tuesday"])


@sgl.function
def branches(s):
    s += "Here is a list of three colors: red, green,"
    forks = s.fork(2)
    for f in forks:
        f += sgl.gen("more", max_tokens=6, temperature=0)
    forks.join()


@sgl.function
def number(s):
    s += "Q: How many legs does a dog have?\nA: "
    s += sgl.gen("legs", max_tokens=8, temperature=0, regex=r"[0-9]{1,2}")


def main(url: str) -> None:
    sgl.set_default_backend(sgl.RuntimeEndpoint(url))
    out = {}
    st = answer.run(question=QUESTION)
    out["answer"] = st["answer"]
    out["answer_meta"] = st.get_meta_info("answer")
    streamed = answer.run(question=QUESTION, stream=True)
    out["answer_streamed"] = "".join(streamed.text_iter("answer"))
    st = choose.run()
    out["city"] = st["city"]
    out["city_meta"] = st.get_meta_info("city")
    st = branches.run()
    out["branches"] = st["more"]  # join() gathers each fork's variable into a list
    out["legs"] = number.run()["legs"]
    batch = answer.run_batch([{"question": q} for q in ("What is 2+2?", QUESTION)])
    out["batch"] = [b["answer"] for b in batch]
    print("RESULT:" + json.dumps(out, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
