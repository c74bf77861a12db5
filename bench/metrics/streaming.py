"""torchmetrics-style streaming wrappers around `bench.metrics.functional`.

Each metric accumulates what it needs batch by batch (`update`) and delegates the final
number to the pure function of the same name (`compute`), so a streamed result equals the
one-shot functional result on the concatenated inputs. States are float64 tensors and
synchronise across processes with torchmetrics' usual reductions ("sum" or "cat").

Note on multi-process use: "cat" states are gathered in rank order, so metrics whose
value depends on row order (InceptionScore shuffles with a fixed seed *after* gathering)
can differ from a single-process run over the same clips in a different order.

`update` accepts torch tensors or numpy arrays; `compute` returns float64 tensors
(InceptionScore: a (mean, std) tuple of them).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from bench.metrics import functional as F

__all__ = ["FrechetDistance", "InceptionScore", "KLDivergence", "CLAPScore", "KernelDistance"]


def _as_tensor_2d(x: Any, name: str, device: torch.device) -> torch.Tensor:
    """Input batch as a float64 (n, d) tensor on `device`; clear error otherwise."""
    t = torch.as_tensor(x.detach() if isinstance(x, torch.Tensor) else np.asarray(x))
    t = t.to(device=device, dtype=torch.float64)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_rows, n_dims), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _scalar(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64)


def _require_rows(state: list[torch.Tensor] | torch.Tensor, name: str) -> torch.Tensor:
    """Concatenate a "cat" state, raising a clear error when nothing was accumulated."""
    if isinstance(state, list) and len(state) == 0:
        raise ValueError(f"no {name} accumulated: call update() before compute()")
    return dim_zero_cat(state)


class FrechetDistance(Metric):
    """Streaming Frechet distance with O(d^2) memory.

    Per side (generated / reference) it accumulates n, s = sum_i x_i and
    S = sum_i x_i x_i^T in float64; compute() forms mu = s / n and the unbiased covariance
    sigma = (S - n mu mu^T) / (n - 1) (ddof = 1, as np.cov) and calls
    `functional.frechet_distance_from_stats`. The raw-moment form loses about
    eps * (|mu|^2 / var) relative precision to cancellation; for embeddings whose mean
    is not many orders of magnitude larger than their spread this is ~1e-13.

    Args:
        num_features: embedding dimension d (fixes the state shapes).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, num_features: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        self.num_features = num_features
        d = num_features
        for side in ("gen", "ref"):
            self.add_state(f"{side}_sum", torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def _accumulate(self, side: str, emb: Any) -> None:
        t = _as_tensor_2d(emb, f"{side}_emb", self.device)
        if t.shape[1] != self.num_features:
            raise ValueError(f"{side}_emb has {t.shape[1]} features, this metric was built for {self.num_features}")
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + t.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + t.T @ t)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + t.shape[0])

    def update(self, gen_emb: Any = None, ref_emb: Any = None) -> None:
        """Add a batch of generated and/or reference embeddings (each (n, d), either may be None)."""
        if gen_emb is None and ref_emb is None:
            raise ValueError("update() needs gen_emb, ref_emb or both")
        if gen_emb is not None:
            self._accumulate("gen", gen_emb)
        if ref_emb is not None:
            self._accumulate("ref", ref_emb)

    def _stats(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        n = float(getattr(self, f"{side}_n"))
        if n < 2:
            raise ValueError(f"Frechet distance needs >= 2 {side} embeddings, got {int(n)}")
        mu = getattr(self, f"{side}_sum").cpu().numpy() / n
        outer = getattr(self, f"{side}_outer").cpu().numpy()
        sigma = (outer - n * np.outer(mu, mu)) / (n - 1.0)
        return mu, (sigma + sigma.T) * 0.5

    def compute(self) -> torch.Tensor:
        return _scalar(F.frechet_distance_from_stats(*self._stats("gen"), *self._stats("ref")))


class InceptionScore(Metric):
    """Streaming inception score: accumulates logits, compute() returns (mean, std) from
    `functional.inception_score` (softmax, RandomState(seed) shuffle, `splits` chunks)."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, splits: int = 10, seed: int | None = 2020, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(splits, int) or splits < 1:
            raise ValueError(f"splits must be a positive int, got {splits!r}")
        self.splits = splits
        self.seed = seed
        self.add_state("logits", [], dist_reduce_fx="cat")

    def update(self, logits: Any) -> None:
        """Add a batch of (n, C) classifier logits."""
        self.logits.append(_as_tensor_2d(logits, "logits", self.device))

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        all_logits = _require_rows(self.logits, "logits").cpu().numpy()
        mean, std = F.inception_score(all_logits, splits=self.splits, seed=self.seed)
        return _scalar(mean), _scalar(std)


class KLDivergence(Metric):
    """Streaming paired KL (audioldm_eval formula, see `functional.kl_divergence_per_clip`):
    keeps the running sum of per-clip KL values and the clip count; compute() = sum / count.
    `gen_logits` row i is paired with `ref_logits` row i."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, kind: Literal["softmax", "sigmoid"] = "softmax", eps: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if kind not in ("softmax", "sigmoid"):
            raise ValueError(f"kind must be 'softmax' or 'sigmoid', got {kind!r}")
        self.kind = kind
        self.eps = eps
        self.add_state("kl_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, gen_logits: Any, ref_logits: Any) -> None:
        """Add a batch of paired logits, both (n, C)."""
        per_clip = F.kl_divergence_per_clip(gen_logits, ref_logits, kind=self.kind, eps=self.eps)
        self.kl_sum = self.kl_sum + float(per_clip.sum())
        self.count = self.count + per_clip.shape[0]

    def compute(self) -> torch.Tensor:
        if float(self.count) == 0:
            raise ValueError("no pairs accumulated: call update() before compute()")
        return self.kl_sum / self.count


class CLAPScore(Metric):
    """Streaming CLAP score: running sum of cosine(text_i, audio_i) and pair count;
    compute() = mean cosine (see `functional.clap_score_per_pair`)."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("cos_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, text_emb: Any, audio_emb: Any) -> None:
        """Add a batch of paired (n, d) text and audio embeddings."""
        cos = F.clap_score_per_pair(text_emb, audio_emb)
        self.cos_sum = self.cos_sum + float(cos.sum())
        self.count = self.count + cos.shape[0]

    def compute(self) -> torch.Tensor:
        if float(self.count) == 0:
            raise ValueError("no pairs accumulated: call update() before compute()")
        return self.cos_sum / self.count


class KernelDistance(Metric):
    """Streaming kernel distance (KAD / KID): accumulates both embedding sets (O(n) memory,
    the U-statistic needs all pairs) and compute() calls `functional.kernel_distance`."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        kernel: Literal["rbf", "poly"] = "rbf",
        bandwidth: float | Literal["median", "median_ref"] = "median",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if kernel not in ("rbf", "poly"):
            raise ValueError(f"kernel must be 'rbf' or 'poly', got {kernel!r}")
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.add_state("gen", [], dist_reduce_fx="cat")
        self.add_state("ref", [], dist_reduce_fx="cat")

    def update(self, gen_emb: Any = None, ref_emb: Any = None) -> None:
        """Add a batch of generated and/or reference embeddings (each (n, d), either may be None)."""
        if gen_emb is None and ref_emb is None:
            raise ValueError("update() needs gen_emb, ref_emb or both")
        if gen_emb is not None:
            self.gen.append(_as_tensor_2d(gen_emb, "gen_emb", self.device))
        if ref_emb is not None:
            self.ref.append(_as_tensor_2d(ref_emb, "ref_emb", self.device))

    def compute(self) -> torch.Tensor:
        gen = _require_rows(self.gen, "generated embeddings").cpu().numpy()
        ref = _require_rows(self.ref, "reference embeddings").cpu().numpy()
        return _scalar(F.kernel_distance(gen, ref, kernel=self.kernel, bandwidth=self.bandwidth))
