"""Streaming torchmetrics wrappers equal the functional results on the concatenated data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.metrics import functional as F
from bench.metrics.streaming import (
    CLAPScore,
    FrechetDistance,
    InceptionScore,
    KernelDistance,
    KLDivergence,
)

# torchmetrics warns when compute() precedes update(); the tests below do that on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:The ``compute`` method of metric")


def _batches(a: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    bounds = np.cumsum([0] + sizes)
    assert bounds[-1] == len(a)
    return [a[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]


def _embeddings(seed: int, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = np.eye(d) + 0.1 * rng.standard_normal((d, d))
    return np.abs(rng.standard_normal((n, d))) @ mix + shift


class TestFrechetDistance:
    def test_equals_functional(self):
        gen, ref = _embeddings(0, 230, 48), _embeddings(1, 170, 48, shift=0.2)
        metric = FrechetDistance(num_features=48)
        for g, r in zip(_batches(gen, [100, 100, 30]), _batches(ref, [60, 60, 50])):
            metric.update(torch.from_numpy(g), torch.from_numpy(r))
        value = metric.compute()
        assert value.dtype == torch.float64
        assert float(value) == pytest.approx(F.frechet_distance(gen, ref), rel=1e-8)

    def test_sides_streamed_separately_numpy_and_float32(self):
        gen, ref = _embeddings(2, 90, 16), _embeddings(3, 120, 16, shift=-0.1)
        metric = FrechetDistance(16)
        for r in _batches(ref, [7, 50, 63]):
            metric.update(ref_emb=r)
        for g in _batches(gen, [45, 45]):
            metric.update(gen_emb=torch.from_numpy(g.astype(np.float32)))
        expected = F.frechet_distance(gen.astype(np.float32), ref)
        assert float(metric.compute()) == pytest.approx(expected, rel=1e-8)

    def test_identical_and_singular(self):
        x = _embeddings(4, 20, 40)  # n < d: singular covariances
        metric = FrechetDistance(40)
        metric.update(x, x)
        assert float(metric.compute()) == pytest.approx(0.0, abs=1e-8)
        y = _embeddings(5, 25, 40)
        metric.reset()
        metric.update(x, y)
        assert float(metric.compute()) == pytest.approx(F.frechet_distance(x, y), rel=1e-8)

    def test_merge_state_like_two_workers(self):
        gen, ref = _embeddings(6, 200, 12), _embeddings(7, 200, 12, shift=0.3)
        a, b = FrechetDistance(12), FrechetDistance(12)
        a.update(gen[:80], ref[:150])
        b.update(gen[80:], ref[150:])
        a.merge_state(b)
        assert float(a.compute()) == pytest.approx(F.frechet_distance(gen, ref), rel=1e-8)

    def test_errors(self):
        with pytest.raises(ValueError, match="num_features"):
            FrechetDistance(0)
        metric = FrechetDistance(4)
        with pytest.raises(ValueError, match="built for 4"):
            metric.update(np.zeros((3, 5)), None)
        with pytest.raises(ValueError, match="2-D"):
            metric.update(np.zeros(4), None)
        with pytest.raises(ValueError, match="gen_emb, ref_emb or both"):
            metric.update()
        metric.update(np.ones((1, 4)), np.ones((5, 4)))
        with pytest.raises(ValueError, match=">= 2 gen"):
            metric.compute()


class TestInceptionScore:
    def test_equals_functional(self):
        logits = 3.0 * np.random.default_rng(10).standard_normal((103, 527))
        metric = InceptionScore()
        for batch in _batches(logits, [32, 32, 32, 7]):
            metric.update(torch.from_numpy(batch))
        mean, std = metric.compute()
        ref_mean, ref_std = F.inception_score(logits, splits=10, seed=2020)
        assert float(mean) == pytest.approx(ref_mean, rel=1e-12)
        assert float(std) == pytest.approx(ref_std, rel=1e-9)

    def test_settings_are_forwarded(self):
        logits = np.random.default_rng(11).standard_normal((40, 9))
        metric = InceptionScore(splits=4, seed=None)
        metric.update(logits)
        assert tuple(float(v) for v in metric.compute()) == pytest.approx(
            F.inception_score(logits, splits=4, seed=None), rel=1e-12
        )

    def test_compute_before_update(self):
        with pytest.raises(ValueError, match="update"):
            InceptionScore().compute()


class TestKLDivergence:
    @pytest.mark.parametrize("kind", ["softmax", "sigmoid"])
    def test_equals_functional(self, kind):
        rng = np.random.default_rng(20)
        gen, ref = 3.0 * rng.standard_normal((57, 527)), 3.0 * rng.standard_normal((57, 527))
        metric = KLDivergence(kind=kind)
        for g, r in zip(_batches(gen, [20, 20, 17]), _batches(ref, [20, 20, 17])):
            metric.update(torch.from_numpy(g), r)
        assert float(metric.compute()) == pytest.approx(F.kl_divergence(gen, ref, kind=kind), rel=1e-12)

    def test_errors(self):
        with pytest.raises(ValueError, match="kind"):
            KLDivergence(kind="both")
        with pytest.raises(ValueError, match="update"):
            KLDivergence().compute()
        with pytest.raises(ValueError, match="same shape"):
            KLDivergence().update(np.zeros((2, 3)), np.zeros((3, 3)))


class TestCLAPScore:
    def test_equals_functional(self):
        rng = np.random.default_rng(30)
        text, audio = rng.standard_normal((45, 512)), rng.standard_normal((45, 512))
        audio += 0.5 * text
        metric = CLAPScore()
        for t, a in zip(_batches(text, [20, 20, 5]), _batches(audio, [20, 20, 5])):
            metric.update(torch.from_numpy(t).float(), torch.from_numpy(a).float())
        expected = F.clap_score(text.astype(np.float32), audio.astype(np.float32))
        assert float(metric.compute()) == pytest.approx(expected, rel=1e-12)
        assert 0.2 < expected < 0.6

    def test_compute_before_update(self):
        with pytest.raises(ValueError, match="update"):
            CLAPScore().compute()


class TestKernelDistance:
    @pytest.mark.parametrize(
        "kernel,bandwidth", [("rbf", "median"), ("rbf", 2.5), ("rbf", "median_ref"), ("poly", "median")]
    )
    def test_equals_functional(self, kernel, bandwidth):
        gen, ref = _embeddings(40, 70, 8), _embeddings(41, 60, 8, shift=0.4)
        metric = KernelDistance(kernel=kernel, bandwidth=bandwidth)
        for g in _batches(gen, [30, 40]):
            metric.update(gen_emb=torch.from_numpy(g))
        metric.update(ref_emb=ref)
        expected = F.kernel_distance(gen, ref, kernel=kernel, bandwidth=bandwidth)
        assert float(metric.compute()) == pytest.approx(expected, rel=1e-12)
        assert expected > 0.0

    def test_errors(self):
        with pytest.raises(ValueError, match="kernel"):
            KernelDistance(kernel="laplace")
        metric = KernelDistance()
        metric.update(gen_emb=np.ones((3, 2)))
        with pytest.raises(ValueError, match="reference embeddings"):
            metric.compute()
