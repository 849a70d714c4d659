"""Sampling parameters (SGLang's names and defaults) and the batched sampler."""
