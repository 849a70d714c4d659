"""The CUDA device runtime: memory, streams, events, seeding and CUDA graph capture.

One runtime per device and process (one process per rank): creating it makes its device the
current CUDA device, so kernels and collectives launched without an explicit device land there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from sglang.backend import DeviceRuntime

GRAPH_WARMUP_RUNS = 2  # runs on a side stream before capture: lazy init, autotuning, allocations


class CudaRuntime(DeviceRuntime):
    def __init__(self, device_index: int = 0) -> None:
        super().__init__(torch.device("cuda", device_index))
        self.device_index = device_index
        torch.cuda.set_device(self.device)
        self._graph_pool: Any = None  # one memory pool shared by every captured graph

    def device_name(self) -> str:
        return torch.cuda.get_device_name(self.device)

    def memory_info(self) -> tuple[int, int]:
        free, total = torch.cuda.mem_get_info(self.device)
        return int(free), int(total)

    @property
    def is_async(self) -> bool:
        return True

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)

    def new_stream(self) -> torch.cuda.Stream:
        return torch.cuda.Stream(device=self.device)

    def current_stream(self) -> torch.cuda.Stream:
        return torch.cuda.current_stream(self.device)

    @contextlib.contextmanager
    def stream(self, stream: Any) -> Iterator[None]:
        with torch.cuda.stream(stream):
            yield

    def new_event(self) -> torch.cuda.Event:
        return torch.cuda.Event()

    def manual_seed(self, seed: int) -> None:
        super().manual_seed(seed)
        torch.cuda.manual_seed_all(seed)

    @property
    def supports_graph_capture(self) -> bool:
        return True

    def capture_graph(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Capture `fn` into a CUDA graph. `fn` must read and write only static buffers (the
        caller refills the inputs before each replay); its return value is captured once and
        is what every replay returns, refreshed in place.

        Warm-up runs on a side stream first, as capture requires: it triggers lazy
        initialisation (cuBLAS handles, Triton autotuning) and allocations outside the graph.
        """
        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_RUNS):
                fn()
        torch.cuda.current_stream(self.device).wait_stream(side)
        if self._graph_pool is None:
            self._graph_pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._graph_pool):
            out = fn()

        def replay() -> Any:
            graph.replay()
            return out

        replay.graph = graph  # type: ignore[attr-defined]  # kept alive with the replay
        return replay
