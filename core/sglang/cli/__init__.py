"""The `sglang` command line."""
