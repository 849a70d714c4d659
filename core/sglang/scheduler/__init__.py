"""Continuous batching: requests, admission, prefix reuse, retraction, stop conditions."""
