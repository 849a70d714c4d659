"""The conformance test modules, shipped inside the wheel so an installed sglang can check any
installed backend. The repository's tests/conformance/ re-exports them."""
