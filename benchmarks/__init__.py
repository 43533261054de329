"""Benchmark suite of saliency-widget (run with ``python -m benchmarks``)."""
