"""Metric suite: pure metric math over arrays, streaming wrappers, backbones, cache, scoring.

from bench.metrics import frechet_distance, inception_score, kl_divergence, clap_score
from bench.metrics import FrechetDistance  # torchmetrics-style update/compute
"""

from bench.metrics.functional import (
    bootstrap_ci,
    bootstrap_frechet_ci,
    clap_score,
    clap_score_per_pair,
    frechet_distance,
    frechet_distance_from_stats,
    frechet_distance_infinity,
    gaussian_stats,
    inception_score,
    kernel_distance,
    kl_divergence,
    kl_divergence_per_clip,
)

_STREAMING = ("FrechetDistance", "InceptionScore", "KLDivergence", "CLAPScore", "KernelDistance")

__all__ = [
    "bootstrap_ci",
    "bootstrap_frechet_ci",
    "clap_score",
    "clap_score_per_pair",
    "frechet_distance",
    "frechet_distance_from_stats",
    "frechet_distance_infinity",
    "gaussian_stats",
    "inception_score",
    "kernel_distance",
    "kl_divergence",
    "kl_divergence_per_clip",
    *_STREAMING,
]


def __getattr__(name):  # torchmetrics (and torch) only when a streaming metric is used
    if name in _STREAMING:
        from bench.metrics import streaming

        return getattr(streaming, name)
    raise AttributeError(f"module 'bench.metrics' has no attribute {name!r}")
