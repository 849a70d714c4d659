"""Imported first by the scripts that run in the upstream venv (never by our own code).

PyPI's torchvision wheel is a CUDA build: beside the CPU torch its compiled ops do not load,
and torchvision then still registers fake kernels for two of them without checking that they
exist, which fails its import (and transformers imports it when installed). Declaring those two
op schemas lets the real torchvision import without its ops, which upstream's client never
calls; bench_serving only imports torchvision through sglang.srt configuration modules."""

import torch

_TORCHVISION = torch.library.Library("torchvision", "DEF")  # kept alive: it owns the schemas
for _op in ("nms", "qnms"):
    _TORCHVISION.define(f"{_op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
