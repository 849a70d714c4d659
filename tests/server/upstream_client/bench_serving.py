"""`python -m sglang.bench_serving ARGS...` of upstream SGLang, after the prelude."""

import runpy
import sys

import prelude  # noqa: F401

sys.argv = ["sglang.bench_serving", *sys.argv[1:]]
runpy.run_module("sglang.bench_serving", run_name="__main__")
