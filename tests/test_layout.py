"""Test modules are imported by basename (pytest's default import mode, which lets helpers such
as tests/engine/tiny_models.py be imported directly): two test files with one basename would
break collection, so this guards against it."""

from collections import Counter
from pathlib import Path


def test_test_module_basenames_are_unique():
    names = Counter(p.name for p in Path(__file__).parent.rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1]
