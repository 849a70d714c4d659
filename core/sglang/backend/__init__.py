"""The backend contract: hook specs, typed records, runtime and communicator interfaces,
discovery of installed backends and selection among them."""

from sglang.backend.communicator import Communicator, ProcessGroupCommunicator
from sglang.backend.hookspecs import ENTRY_POINT_GROUP, hookimpl
from sglang.backend.runtime import CpuRuntime, DeviceRuntime, SyncEvent, SyncStream
from sglang.backend.types import (
    API_VERSION,
    KIND_ACCELERATOR,
    KIND_CPU,
    KIND_FALLBACK,
    BackendInfo,
    Capabilities,
    ConformanceManifest,
    ExpectedFailure,
    ProbeResult,
    ServerDefaults,
    ToleranceOverride,
)

__all__ = [
    "API_VERSION",
    "ENTRY_POINT_GROUP",
    "KIND_ACCELERATOR",
    "KIND_CPU",
    "KIND_FALLBACK",
    "BackendInfo",
    "Capabilities",
    "Communicator",
    "ConformanceManifest",
    "CpuRuntime",
    "DeviceRuntime",
    "ExpectedFailure",
    "ProbeResult",
    "ProcessGroupCommunicator",
    "ServerDefaults",
    "SyncEvent",
    "SyncStream",
    "ToleranceOverride",
    "hookimpl",
]
