"""sglang-ascend: the Huawei Ascend NPU backend (torch-npu ops, HCCL)."""

__version__ = "0.1.0"
