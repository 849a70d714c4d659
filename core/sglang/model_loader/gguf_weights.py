"""GGUF weights: a GGUF file's tensors, dequantized and renamed to Hugging Face names, one by one.

This streams what transformers' legacy GGUF loader
(`transformers.modeling_gguf_pytorch_utils.load_gguf_checkpoint(path, return_tensors=True,
model_to_load=model)`, the path `from_pretrained(gguf_file=...)` takes for llama and most
architectures) builds as one dict, from the same pieces:

- `get_gguf_hf_weights_map(model, processor)`: GGUF name -> HF name, from the HF model's state
  dict and gguf-py's tensor-name map; the model is built on the meta device (no storage);
- `TENSOR_PROCESSORS[architecture]`: per-architecture fix-ups of the dequantized values, e.g.
  llama's q/k rows, which llama.cpp permutes for its interleaved rotary layout and the
  processor permutes back to HF's rotate-half layout;
- gguf-py's `dequantize` (numpy), which yields float32.

The tensor table comes from transformers' fast header reader (`integrations.gguf.reader`,
transformers >= 5.x, no vocabulary parsing) where present, else from gguf-py's GGUFReader.
Tensors are memory-mapped and read only when reached. Every tensor is yielded as float32, in
torch's dimension order; the model casts it into its own dtype. GGUF tensors with no HF name
(e.g. llama.cpp's precomputed rope factors) are skipped, as transformers skips them. Processors
that merge several GGUF tensors into one (MoE experts) fill a pending dict, yielded at the end.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import torch

from sglang.model_loader.gguf_blocks import DECODERS, BlockQuant, CodesTensor, decode_blocks

GGML_F32, GGML_F16, GGML_BF16 = 0, 1, 30
_FLOAT_TYPES = {GGML_F32: torch.float32, GGML_F16: torch.float16, GGML_BF16: torch.bfloat16}


class RawTensor(NamedTuple):
    """One tensor of a GGUF file before dequantization.

    shape: in elements, torch order. read(): the stored data as numpy, shaped
    (*shape[:-1], bytes per row) for block types, as gguf-py's `dequantize` takes it.
    """

    name: str
    ggml_type: int
    shape: tuple[int, ...]
    nbytes: int
    read: Callable[[], np.ndarray]


def read_tensor_table(path: str) -> tuple[str, list[RawTensor]]:
    """(general.architecture, the file's tensors), without reading tensor data."""
    try:
        from transformers.integrations.gguf.reader import GgufHeader
    except ImportError:
        return _tensor_table_gguf_py(path)
    try:
        header = GgufHeader.from_file(path)
    except ValueError:  # a block type the fast reader does not size (Q5_0, Q5_1, ...)
        return _tensor_table_gguf_py(path)
    # A plain ndarray view: numpy's memmap subclass costs a hook on every derived array.
    blob = np.memmap(path, mode="r", dtype=np.uint8).view(np.ndarray)
    tensors = []
    for info in header.tensors:
        start = header.data_start + info.offset
        rows = info.shape[:-1]
        byte_shape = (*rows, info.nbytes // max(1, math.prod(rows)))
        view = blob[start : start + info.nbytes]
        read = lambda view=view, shape=byte_shape: view.reshape(shape)  # noqa: E731
        tensors.append(RawTensor(info.name, info.ggml_type, tuple(info.shape), info.nbytes, read))
    return header.architecture, tensors


def _tensor_table_gguf_py(path: str) -> tuple[str, list[RawTensor]]:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    field = reader.fields["general.architecture"]
    architecture = bytes(field.parts[field.data[0]]).decode("utf-8")
    tensors = []
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(t.shape))  # ggml lists the fastest dim first
        read = lambda t=t: t.data  # noqa: E731
        tensors.append(RawTensor(t.name, int(t.tensor_type), shape, int(t.n_bytes), read))
    return architecture, tensors


def gguf_float_dtype(path: str) -> torch.dtype:
    """The float type a GGUF file was written in; float32 where it holds quantized blocks.

    Half-precision files keep their norms in F32, so the half type, where present, wins.
    """
    _, tensors = read_tensor_table(path)
    types = {t.ggml_type for t in tensors}
    if not types <= set(_FLOAT_TYPES):
        return torch.float32
    for ggml_type in (GGML_BF16, GGML_F16, GGML_F32):
        if ggml_type in types:
            return _FLOAT_TYPES[ggml_type]
    return torch.float32


class _TopLevelView:
    """A model as `get_gguf_hf_weights_map` sees it, minus its submodules.

    That function maps the full parameter names, then recurses into every submodule, building
    gguf-py's name table again for each (12 s for a 30-layer llama). The recursion only finds
    names for models whose GGUF was converted from a submodule (Bloom); `gguf_hf_names` runs
    it only when the full-name pass leaves parameters unnamed.
    """

    def __init__(self, model: torch.nn.Module):
        self.config = model.config
        self._model = model

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._model.state_dict()

    def named_children(self) -> list:
        return []


def gguf_hf_names(
    hf_config: Any, architecture: str, path: str | None = None
) -> tuple[Any, dict[str, str]]:
    """(tensor processor, {GGUF name: HF name}) for a model of `hf_config`. path: the GGUF
    file the config was read from; the names are then kept in the disk cache (gguf_cache):
    building them imports transformers' model module (1-2 s) to make the model on the meta
    device."""
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, TensorProcessor

    config = hf_config.to_dict()
    processor = TENSOR_PROCESSORS.get(architecture, TensorProcessor)(config=config)
    if path is None:
        return processor, _hf_names(hf_config, processor)
    from sglang.model_loader.gguf_cache import cached

    def build() -> _NameMap:
        return _NameMap(_hf_names(hf_config, processor))

    # Keyed by the config too: a caller may name the file's tensors for another config.
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    what = f"names/{digest.hexdigest()[:20]}"
    return processor, cached(path, what, build, _NameMap.load).names


def _hf_names(hf_config: Any, processor: Any) -> dict[str, str]:
    from transformers import AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import get_gguf_hf_weights_map

    # The meta device holds shapes only: the model is built for its parameter names.
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config)
    names = get_gguf_hf_weights_map(_TopLevelView(model), processor)
    if set(model.state_dict()) - set(names.values()):
        names = get_gguf_hf_weights_map(model, processor)
    return names


class _NameMap:
    """{GGUF name: HF name} as a gguf_cache entry (names.json)."""

    FILE = "names.json"

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def save_pretrained(self, directory: str) -> None:
        with open(os.path.join(directory, self.FILE), "w", encoding="utf-8") as f:
            json.dump(self.names, f)

    @classmethod
    def load(cls, directory: str) -> _NameMap:
        with open(os.path.join(directory, cls.FILE), encoding="utf-8") as f:
            names = json.load(f)
        if not isinstance(names, dict):
            raise ValueError(f"{cls.FILE} holds no name map")
        return cls(names)


def gguf_weights(
    path: str,
    hf_config: Any,
    types: dict[str, str] | None = None,
    blocks: dict[str, BlockQuant] | None = None,
) -> tuple[int, Iterator[tuple[str, torch.Tensor]]]:
    """(number of tensors in the file, iterator of (HF name, float32 tensor)) for a GGUF file.

    types: filled as tensors are yielded with {HF name: the file's GGML type name}, e.g.
    "Q4_1", "Q8_0", "F32" (the precision each weight was published in). blocks: filled with
    {HF name: the tensor's codes, scales and zeros} (sglang.model_loader.gguf_blocks) for
    2-D tensors of a block type served quantized, in the yielded tensor's row order, before
    the tensor is yielded; such a tensor is yielded as a CodesTensor (float32 values computed
    from the codes when an op reads them)."""
    architecture, tensors = read_tensor_table(path)
    return len(tensors), _iterate(tensors, architecture, hf_config, types, blocks, path)


def _iterate(
    tensors: list[RawTensor],
    architecture: str,
    hf_config: Any,
    types: dict[str, str] | None,
    blocks: dict[str, BlockQuant] | None,
    path: str | None = None,
) -> Iterator[tuple[str, torch.Tensor]]:
    from gguf import GGMLQuantizationType, dequantize

    processor, names = gguf_hf_names(hf_config, architecture, path)
    merged: dict[str, dict[str, torch.Tensor]] = {"tensors": {}}
    for raw in tensors:
        kind = GGMLQuantizationType(raw.ggml_type).name
        if blocks is not None and kind in DECODERS and len(raw.shape) == 2:
            found = _as_codes(processor, raw, kind, names)
            if found is not None:  # the float values from the codes, computed when read
                hf_name, quant = found
                blocks[hf_name] = quant
                if types is not None:
                    types[hf_name] = kind
                yield hf_name, CodesTensor(quant)
                continue
        values = dequantize(raw.read(), GGMLQuantizationType(raw.ggml_type))
        result = processor.process(
            weights=values, name=raw.name, tensor_key_mapping=names, parsed_parameters=merged
        )
        if result.name is None or result.name not in names:
            continue
        hf_name = names[result.name]
        if types is not None:
            types[hf_name] = kind
        yield hf_name, torch.from_numpy(np.array(result.weights, dtype=np.float32))
    yield from merged["tensors"].items()


def _as_codes(
    processor: Any, raw: RawTensor, kind: str, names: dict[str, str]
) -> tuple[str, BlockQuant] | None:
    """(HF name, codes in the HF row order) for a tensor the architecture's processor only
    renames and reorders by rows (llama's q / k: back from llama.cpp's interleaved rotary
    layout), found by running the processor on the row numbers; None for anything else (the
    tensor then takes the float path)."""
    rows = raw.shape[0]
    index = np.arange(rows, dtype=np.float64).reshape(rows, 1)
    result = processor.process(
        weights=index, name=raw.name, tensor_key_mapping=names, parsed_parameters={"tensors": {}}
    )
    if result.name is None or result.name not in names:
        return None
    out = np.asarray(result.weights)
    if out.shape != (rows, 1) or not np.array_equal(np.sort(out[:, 0]), index[:, 0]):
        return None
    quant = decode_blocks(raw.read(), kind, raw.shape)
    order = out[:, 0].astype(np.int64)
    if not np.array_equal(order, index[:, 0]):
        quant = quant.rows(torch.from_numpy(order))
    return names[result.name], quant
