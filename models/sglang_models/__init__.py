"""First-party model architectures, registered under the `sglang.models` entry-point group."""
