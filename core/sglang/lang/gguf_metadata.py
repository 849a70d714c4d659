"""Read a few metadata values of a GGUF file without loading it (gguf's reader maps every
field and tensor, seconds for a large vocabulary; this walks the key/value section once).

Layout (GGUF v2/v3, little-endian): magic "GGUF", u32 version, u64 tensor count, u64 kv count,
then per kv: string key, u32 value type, value. A string is u64 length + UTF-8 bytes; an array
is u32 item type, u64 count, items.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q"}
SCALARS.update({11: "<q", 12: "<d"})
STRING, ARRAY = 8, 9


def read_metadata(path: str, keys: set[str], array_items: dict[str, set[int]]) -> dict[str, Any]:
    """Scalar/string values of `keys`; for array keys in `array_items`, {index: item} of the
    wanted indices only."""
    out: dict[str, Any] = {}
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version, _, n_kv = struct.unpack("<IQQ", f.read(20))
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is not supported")
        for _ in range(n_kv):
            key = _string(f)
            kind = _u32(f)
            if kind == ARRAY and key in array_items:
                out[key] = _array(f, array_items[key])
            elif key in keys:
                out[key] = _value(f, kind)
            else:
                _skip(f, kind)
            if len(out) == len(keys) + len(array_items):
                break
    return out


def _u32(f: BinaryIO) -> int:
    return struct.unpack("<I", f.read(4))[0]


def _u64(f: BinaryIO) -> int:
    return struct.unpack("<Q", f.read(8))[0]


def _string(f: BinaryIO) -> str:
    return f.read(_u64(f)).decode("utf-8", errors="replace")


def _value(f: BinaryIO, kind: int) -> Any:
    if kind == STRING:
        return _string(f)
    if kind == ARRAY:
        item, count = _u32(f), _u64(f)
        return [_value(f, item) for _ in range(count)]
    fmt = SCALARS[kind]
    return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]


def _skip(f: BinaryIO, kind: int) -> None:
    if kind == STRING:
        f.seek(_u64(f), 1)
    elif kind == ARRAY:
        item, count = _u32(f), _u64(f)
        if item in SCALARS:
            f.seek(count * struct.calcsize(SCALARS[item]), 1)
        else:
            for _ in range(count):
                _skip(f, item)
    else:
        f.seek(struct.calcsize(SCALARS[kind]), 1)


def _array(f: BinaryIO, wanted: set[int]) -> dict[int, Any]:
    item, count = _u32(f), _u64(f)
    out = {}
    for i in range(count):
        if i in wanted:
            out[i] = _value(f, item)
        else:
            _skip(f, item)
    return out
