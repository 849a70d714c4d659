"""The batched sampler: penalties, logit bias, min-tokens masking, then `sampling.sample`.

Order per step (SGLang's): penalties (repetition over prompt and output, frequency and presence
over output), the grammar mask, logit bias, then temperature / top-k / top-p / min-p sampling.
Randomness comes from each request's own generator (seeded by `sampling_seed`), drawn as one
uniform per step, so a request's output does not depend on what it is batched with.
Logprobs are those of the model's raw distribution (log_softmax of the unprocessed logits).
A grammar's mask decides when a constrained output may end: min_new_tokens bans no stop token
there (a complete grammar allows nothing else).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sglang.sampling.params import SamplingParams


@dataclass
class SampleInput:
    """What the sampler needs from one request this step."""

    params: SamplingParams
    prompt_ids: Sequence[int]
    output_ids: Sequence[int]
    generator: torch.Generator | None  # None for a greedy request (never drawn from)
    eos_ids: frozenset[int]
    top_logprobs_num: int = 0
    return_logprob: bool = False
    bitmask: torch.Tensor | None = None  # int32 [ceil(V/32)] from a grammar, or None


@dataclass
class SampleLaunch:
    """A sampling step launched on the device (ids not yet read back)."""

    ids: torch.Tensor  # int64 [B] on the logits' device
    raw_logprobs: torch.Tensor | None
    inputs: Sequence[SampleInput]


def _needs_processing(inp: SampleInput) -> bool:
    """Whether this row's logits change before sampling (penalties, bias, min-tokens)."""
    p = inp.params
    return bool(
        p.repetition_penalty != 1.0
        or ((p.frequency_penalty or p.presence_penalty) and inp.output_ids)
        or p.logit_bias
        or (len(inp.output_ids) < p.min_new_tokens and inp.bitmask is None)
    )


@functools.cache
def _argmax_chunk(vocab: int) -> int:
    """Entries per chunk of greedy_argmax's first pass: the largest divisor of the vocabulary
    in [64, 512], or 0 when it has none (then one pass)."""
    return next((d for d in range(512, 63, -1) if vocab % d == 0), 0)


def greedy_argmax(logits: torch.Tensor) -> torch.Tensor:
    """torch.argmax(logits, dim=-1) in two passes: each chunk's maximum, then the best chunk.

    One pass reduces a row in one GPU block (27.6 us for Llama 3's 128,256 logits on an
    H200, on the critical path of every greedy decode step); the chunks spread the first pass
    over the device. On the CPU it costs the same (float32 logits). Ties go to the first
    maximum, as in torch.argmax: each pass keeps its first."""
    rows, vocab = logits.shape
    chunk = _argmax_chunk(vocab)
    if not chunk or rows == 0 or not logits.is_contiguous():
        return torch.argmax(logits, dim=-1)
    values, index = logits.view(rows, vocab // chunk, chunk).max(dim=-1)
    best = values.argmax(dim=-1, keepdim=True)
    return (best * chunk + index.gather(1, best)).squeeze(1)


@dataclass
class SampleOutput:
    ids: list[int]
    logprobs: list[float | None]
    top_logprobs: list[list[tuple[int, float]] | None]


class Sampler:
    def __init__(self, ops, vocab_size: int) -> None:
        self.ops, self.vocab_size = ops, vocab_size

    def __call__(self, logits: torch.Tensor, inputs: Sequence[SampleInput]) -> SampleOutput:
        """logits: float32 [B, V'] (V' >= vocab: padded vocabularies are cut)."""
        return self.finish(self.launch(logits, inputs))

    def launch(self, logits: torch.Tensor, inputs: Sequence[SampleInput]) -> SampleLaunch:
        """Everything up to the sampled ids, left on the device: no host synchronisation, so
        the overlap scheduler can build the next step while this one runs."""
        logits = logits[:, : self.vocab_size].float()
        want_logprobs = any(i.return_logprob for i in inputs)
        raw_logprobs = torch.log_softmax(logits, dim=-1) if want_logprobs else None
        masks = [i.bitmask for i in inputs]
        has_mask = any(m is not None for m in masks)
        rows = [row for row, inp in enumerate(inputs) if _needs_processing(inp)]
        if rows or has_mask:  # the caller's logits stay as they were
            logits = logits.clone()
        for row in rows:
            self._process_row(logits[row], inputs[row])
        if has_mask:
            words = (self.vocab_size + 31) // 32
            full = torch.full((len(inputs), words), -1, dtype=torch.int32)
            for row, m in enumerate(masks):
                if m is not None:
                    full[row] = m
            self.ops.apply_bitmask(logits=logits, bitmask=full.to(logits.device))
        ids = self._sample(logits, inputs)
        return SampleLaunch(ids, raw_logprobs, inputs)

    def finish(self, launched: SampleLaunch, ids: list[int] | None = None) -> SampleOutput:
        """The host side: ids as ints (read from the device unless given) and the logprobs."""
        ids_list = launched.ids.tolist() if ids is None else ids
        return self._logprobs(ids_list, launched.raw_logprobs, launched.inputs)

    def _process_row(self, row: torch.Tensor, inp: SampleInput) -> None:
        p = inp.params
        if p.repetition_penalty != 1.0:
            seen = torch.tensor(sorted({*inp.prompt_ids, *inp.output_ids}), dtype=torch.long)
            seen = seen.to(row.device)
            vals = row[seen]
            row[seen] = torch.where(
                vals > 0, vals / p.repetition_penalty, vals * p.repetition_penalty
            )
        if (p.frequency_penalty or p.presence_penalty) and inp.output_ids:
            out = torch.tensor(inp.output_ids, dtype=torch.long, device=row.device)
            counts = torch.bincount(out, minlength=self.vocab_size)[: self.vocab_size].to(row.dtype)
            row -= p.frequency_penalty * counts + p.presence_penalty * (counts > 0).to(row.dtype)
        for tok, bias in p.logit_bias.items():
            row[tok] += bias
        if len(inp.output_ids) < p.min_new_tokens and inp.bitmask is None:
            banned = set(p.stop_token_ids) | (set() if p.ignore_eos else set(inp.eos_ids))
            for tok in banned:
                if 0 <= tok < self.vocab_size:
                    row[tok] = float("-inf")

    def _sample(self, logits: torch.Tensor, inputs: Sequence[SampleInput]) -> torch.Tensor:
        if all(i.params.is_greedy for i in inputs):
            return greedy_argmax(logits)
        b, dev = len(inputs), logits.device
        temps = torch.tensor([i.params.temperature for i in inputs], dtype=torch.float32)
        # top_k >= vocab means all (the op's contract); clamped so it fits in int32
        top_ks = [min(i.params.top_k, self.vocab_size) for i in inputs]
        top_ks = torch.tensor(top_ks, dtype=torch.int32)
        top_ps = torch.tensor([i.params.top_p for i in inputs], dtype=torch.float32)
        min_ps = torch.tensor([i.params.min_p for i in inputs], dtype=torch.float32)
        uniforms = torch.empty(b, dtype=torch.float32)
        for row, inp in enumerate(inputs):
            uniforms[row] = (
                0.0 if inp.params.is_greedy else torch.rand(1, generator=inp.generator)[0]
            )
        return self.ops.sample(
            logits=logits,
            temperatures=temps.to(dev, non_blocking=True),
            top_ks=top_ks.to(dev, non_blocking=True),
            top_ps=top_ps.to(dev, non_blocking=True),
            min_ps=min_ps.to(dev, non_blocking=True),
            uniforms=uniforms.to(dev, non_blocking=True),
        )

    def _logprobs(self, ids_list: list[int], raw_logprobs, inputs) -> SampleOutput:
        logprobs: list[float | None] = [None] * len(inputs)
        tops: list[list[tuple[int, float]] | None] = [None] * len(inputs)
        if raw_logprobs is not None:
            for row, inp in enumerate(inputs):
                if not inp.return_logprob:
                    continue
                logprobs[row] = float(raw_logprobs[row, ids_list[row]])
                if inp.top_logprobs_num > 0:
                    vals, idx = raw_logprobs[row].topk(inp.top_logprobs_num)
                    tops[row] = list(zip(idx.tolist(), vals.tolist()))
        return SampleOutput(ids_list, logprobs, tops)
