"""Checkpoint weights as a stream of (Hugging Face parameter name, tensor) pairs.

`iterate_weights` reads one tensor at a time, so a model copies each into its parameters and
the checkpoint is never held whole in memory: safetensors shards through `safe_open` (memory
mapped), `.bin` shards through `torch.load(weights_only=True)` (one shard at a time), GGUF
through `gguf_weights`. Tensors come out on the host, in the checkpoint's dtype (float32 for
GGUF); casting and placing them is the model's job. Names are the checkpoint's: a tied
`lm_head.weight` that the checkpoint omits is not invented.

`--load-format dummy` reads no files: `dummy_weights` fills the shapes the model declares.

A progress bar (tqdm, on stderr) follows the tensors when stderr is a terminal, and one log
line reports the count, the bytes and the seconds once the stream is exhausted.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from sglang.model_loader.source import CONFIG_ONLY, ModelSource, resolve_source

logger = logging.getLogger(__name__)

LOAD_FORMATS = ("auto", "safetensors", "pt", "gguf", "dummy")
DUMMY_STD = 0.02
_SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}

ParamShapes = dict[str, tuple[tuple[int, ...], torch.dtype]]


def iterate_weights(
    source: ModelSource | str | os.PathLike,
    load_format: str = "auto",
    *,
    hf_config: Any = None,
    progress: bool | None = None,
    types: dict[str, str] | None = None,
    blocks: dict | None = None,
) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (HF parameter name, host tensor) for every tensor of the checkpoint.

    load_format: "auto" (the source's format), "safetensors", "pt" or "gguf"; "dummy" is
    refused here (see `dummy_weights`). hf_config: the transformers config, used by GGUF to
    name tensors (read from the file when None). progress: show a bar; None shows one when
    stderr is a terminal. types: GGUF only, filled with each yielded tensor's GGML type name
    (see `gguf_weights`); blocks: GGUF only, filled with the quantized tensors' codes.
    """
    source = resolve_source(source)
    fmt = _check_format(source, load_format)
    if fmt == "safetensors":
        total, tensors = _safetensors_weights(source.weight_files)
    elif fmt == "pt":
        total, tensors = None, _pt_weights(source.weight_files)
    else:
        from sglang.model_loader.gguf_weights import gguf_weights

        if hf_config is None:
            from sglang.model_loader.config import load_model_config

            hf_config = load_model_config(source).raw
        total, tensors = gguf_weights(source.weight_files[0], hf_config, types, blocks)
    yield from _tracked(tensors, total, f"Loading {fmt} weights", source.path, progress)


def _check_format(source: ModelSource, load_format: str) -> str:
    if load_format not in LOAD_FORMATS:
        raise ValueError(f"unknown load format {load_format!r}: use one of {LOAD_FORMATS}")
    if load_format == "dummy":
        raise ValueError(
            "load format 'dummy' reads no files: fill the model's parameters with "
            "dummy_weights(parameter_shapes(model))"
        )
    if source.format == CONFIG_ONLY:
        raise ValueError(
            f"{source.path!r} holds a config.json but no weights: pass --load-format dummy for "
            "random weights, or a directory with *.safetensors / pytorch_model.bin"
        )
    if load_format not in ("auto", source.format):
        raise ValueError(
            f"load format {load_format!r} asked for, but {source.path!r} holds {source.format} "
            "weights"
        )
    return source.format


def _safetensors_weights(files: tuple[str, ...]) -> tuple[int, Iterator]:
    from safetensors import safe_open

    total = 0
    for path in files:
        with safe_open(path, framework="pt") as handle:
            total += len(list(handle.keys()))

    def tensors() -> Iterator[tuple[str, torch.Tensor]]:
        for path in files:
            with safe_open(path, framework="pt") as handle:
                for name in handle.keys():
                    yield name, handle.get_tensor(name)

    return total, tensors()


def _keep_on_host(storage: Any, location: str) -> Any:
    """torch.load map_location: leave every storage where deserialisation put it, the host."""
    return storage


def _pt_weights(files: tuple[str, ...]) -> Iterator[tuple[str, torch.Tensor]]:
    for path in files:
        try:
            state = torch.load(path, map_location=_keep_on_host, weights_only=True, mmap=True)
        except RuntimeError:
            # Files in the legacy (pre-zip) serialisation cannot be memory-mapped.
            state = torch.load(path, map_location=_keep_on_host, weights_only=True)
        yield from state.items()
        del state


def _tracked(
    tensors: Iterable[tuple[str, torch.Tensor]],
    total: int | None,
    desc: str,
    origin: str,
    progress: bool | None,
) -> Iterator[tuple[str, torch.Tensor]]:
    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    start = time.perf_counter()
    count = nbytes = 0
    with tqdm(total=total, desc=desc, unit="tensor", file=sys.stderr, disable=not show) as bar:
        for name, tensor in tensors:
            count += 1
            nbytes += tensor.numel() * tensor.element_size()
            bar.update(1)
            yield name, tensor
    logger.info(
        "loaded %d tensors (%.1f MiB) from %s in %.2f s",
        count,
        nbytes / 2**20,
        origin,
        time.perf_counter() - start,
    )


def checkpoint_float_dtype(source: ModelSource | str | os.PathLike) -> torch.dtype | None:
    """The float dtype the checkpoint's weights are stored in, from file headers only.

    A half type found anywhere wins over float32 (half checkpoints keep some tensors in float32).
    GGUF: see `gguf_float_dtype`. None where it cannot be told cheaply (.bin checkpoints).
    """
    source = resolve_source(source)
    if source.is_gguf:
        from sglang.model_loader.gguf_weights import gguf_float_dtype

        return gguf_float_dtype(source.weight_files[0])
    if source.format != "safetensors":
        return None
    from safetensors import safe_open

    found = set()
    with safe_open(source.weight_files[0], framework="pt") as handle:
        for name in handle.keys():
            found.add(_SAFETENSORS_DTYPES.get(handle.get_slice(name).get_dtype()))
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        if dtype in found:
            return dtype
    return None


def parameter_shapes(module: torch.nn.Module) -> ParamShapes:
    """{name: (shape, dtype)} of a module's parameters, the input `dummy_weights` takes."""
    return {name: (tuple(p.shape), p.dtype) for name, p in module.named_parameters()}


def dummy_weights(
    param_shapes: ParamShapes,
    seed: int = 0,
    device: torch.device | None = None,
    progress: bool | None = None,
) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (name, tensor) of random weights for `--load-format dummy`, in `param_shapes` order.

    Floating weights are normal(0, DUMMY_STD); norm weights ("norm" in the name) are ones and
    norm biases zeros, so activations keep their scale; integer tensors are zeros. Each
    tensor's values depend only on (seed, name), not on the order or on the other parameters.
    Tensors are made on `device` (the host when None).
    """

    def tensors() -> Iterator[tuple[str, torch.Tensor]]:
        for name, (shape, dtype) in param_shapes.items():
            yield name, _dummy_tensor(name, tuple(shape), dtype, seed, device)

    yield from _tracked(tensors(), len(param_shapes), "Dummy weights", "dummy", progress)


def _dummy_tensor(
    name: str, shape: tuple[int, ...], dtype: torch.dtype, seed: int, device: torch.device | None
) -> torch.Tensor:
    if "norm" in name and name.endswith("weight"):
        return torch.ones(shape, dtype=dtype, device=device)
    if not dtype.is_floating_point or ("norm" in name and name.endswith("bias")):
        return torch.zeros(shape, dtype=dtype, device=device)
    gen = torch.Generator() if device is None else torch.Generator(device=device)
    gen.manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) % 2**63)
    sample_dtype = dtype if dtype.itemsize >= 2 else torch.float32
    values = torch.randn(shape, generator=gen, dtype=sample_dtype, device=device) * DUMMY_STD
    return values.to(dtype)
