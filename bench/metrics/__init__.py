"""Metric suite: pure metric math over arrays, streaming wrappers, backbones, cache, scoring."""
