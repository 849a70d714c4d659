"""List Python sources that contain NUL bytes under the interpreter's package folders (a GPU
machine's image was seen answering imports with "source code string cannot contain null bytes",
2026-12-05): path, size, NUL count and where the first one is. Usage: python3 gpu_null_bytes.py
[ROOT...] (default: every sys.path folder that exists)."""

from __future__ import annotations

import os
import sys


def scan(roots: list[str]) -> list[tuple[str, int, int, int]]:
    bad = []
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                if b"\0" in data:
                    bad.append((path, len(data), data.count(b"\0"), data.index(b"\0")))
    return bad


if __name__ == "__main__":
    roots = sys.argv[1:] or sorted({p for p in sys.path if p and os.path.isdir(p)})
    bad = scan(roots)
    print(f"scanned {roots}: {len(bad)} .py files with NUL bytes")
    for path, size, nuls, first in bad[:80]:
        print(f"  {path}: {size} bytes, {nuls} NUL, first at {first}")
