"""Device runtime: the only way the core touches a device.

The core never names a device; it asks the runtime a backend created for the torch device,
memory, synchronisation, streams/events, seeding and graph capture. `DeviceRuntime` is the
interface with synchronous defaults implemented once here: a backend without asynchronous
streams inherits streams that run work immediately and events that are always complete, so the
overlap scheduler falls back cleanly to a serial loop.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import torch


class SyncStream:
    """A stream on a synchronous device: work submitted to it has finished on return."""

    def synchronize(self) -> None:
        pass

    def wait_event(self, event: SyncEvent) -> None:
        pass

    def wait_stream(self, stream: SyncStream) -> None:
        pass


class SyncEvent:
    """An event on a synchronous device: always complete."""

    def record(self, stream: SyncStream | None = None) -> None:
        pass

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        pass


class DeviceRuntime:
    """One device of one backend. Subclasses override what their device does differently."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)

    # --- identity and memory -------------------------------------------------------------
    def device_name(self) -> str:
        """Human-readable name of the device, for logs."""
        return str(self.device)

    def memory_info(self) -> tuple[int, int]:
        """(free_bytes, total_bytes) of the device memory the KV pool and weights share."""
        return host_memory_info()

    # --- execution -----------------------------------------------------------------------
    @property
    def is_async(self) -> bool:
        """True when kernels return before the device finishes (streams are real)."""
        return False

    def synchronize(self) -> None:
        """Block until all work submitted to this device has finished."""

    def new_stream(self) -> Any:
        return SyncStream()

    def current_stream(self) -> Any:
        return SyncStream()

    @contextlib.contextmanager
    def stream(self, stream: Any) -> Iterator[None]:
        """Make `stream` current inside the block."""
        yield

    def new_event(self) -> Any:
        return SyncEvent()

    def manual_seed(self, seed: int) -> None:
        """Seed every random generator work on this device draws from."""
        random.seed(seed)
        torch.manual_seed(seed)

    # --- graph capture (optional) --------------------------------------------------------
    @property
    def supports_graph_capture(self) -> bool:
        return False

    def capture_graph(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Capture `fn` (run on static buffers) into a replayable graph; returns the replay
        function. Backends without graphs return `fn` itself, which replays eagerly."""
        return fn


def host_memory_info() -> tuple[int, int]:
    """(available, total) host memory in bytes, from /proc/meminfo where it exists."""
    try:
        with open("/proc/meminfo") as f:
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return fields.get("MemAvailable", fields["MemFree"]), fields["MemTotal"]
    except (OSError, KeyError, ValueError):
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return pages, pages


class CpuRuntime(DeviceRuntime):
    """Runtime for backends whose tensors live in host memory (reference, xeon, emulators)."""

    def __init__(self, device_index: int = 0) -> None:
        super().__init__("cpu")
        self.device_index = device_index

    def device_name(self) -> str:
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "cpu"
