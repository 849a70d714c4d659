"""Memory pools: request rows -> token positions -> KV slots -> KV storage.

Two levels of indirection, as in SGLang:

    ReqToTokenPool.req_to_token[row, pos] = slot    (which KV slot holds that token)
    KVSlotAllocator                                 (which slots 1..size are free)
    KVCache.k_buffer(layer)[slot], v_buffer(...)    (the keys and values themselves)

Slot 0 is the padding slot: never handed out, so padded batches may write there freely.
No device code: tensors live on the `device` the caller passes.
"""

from sglang.mem.kv_cache import KVCache, tokens_that_fit
from sglang.mem.req_to_token import ReqToTokenPool
from sglang.mem.slot_allocator import KVSlotAllocator

__all__ = ["KVCache", "KVSlotAllocator", "ReqToTokenPool", "tokens_that_fit"]
