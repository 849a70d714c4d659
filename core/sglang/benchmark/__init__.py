"""Shared parts of the benchmark clients (`sglang.bench_serving`, `sglang.bench_offline_throughput`,
`sglang.bench_one_batch`): workload datasets, request functions for each server API, metrics and
their report. Flag names, metric names and the printed report follow SGLang's benchmark scripts,
so numbers from either project can be compared line by line.
`request_trace`: the server's own timestamps along a request's path (SGLANG_REQUEST_TRACE).
"""
