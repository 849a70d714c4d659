"""The conformance suite every backend runs: `sglang conformance --backend NAME`."""
