"""Closed forms, hand cases and reference-algorithm oracles for bench.metrics.functional."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from bench.metrics import functional as F


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _random_spd(rng: np.random.Generator, d: int, cond: float = 50.0) -> np.ndarray:
    """Random SPD matrix with eigenvalues spread log-uniformly over [1, cond]."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    w = np.exp(rng.uniform(0.0, math.log(cond), size=d))
    return (q * w) @ q.T


def _fd_sqrtm_reference(mu1, s1, mu2, s2) -> float:
    """The pytorch-fid / audioldm_eval formula with scipy.linalg.sqrtm (oracle)."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def _cross_factor(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """A = F2^T F1 (Cholesky factors of the covariances) and ||mu1 - mu2||^2 + tr1 + tr2."""
    (mu1, s1), (mu2, s2) = F.gaussian_stats(x), F.gaussian_stats(y)
    f1, f2 = np.linalg.cholesky(s1), np.linalg.cholesky(s2)
    return f2.T @ f1, float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2))


def _mixture_pair(
    rng: np.random.Generator, n: int, d: int, low: float = 1e-3, perturb: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """The hard case of issue 17 (benchmarks/bench_frechet.py "mix-shift" / "mix-perturb"):
    x = z M, y = z' M (I + perturb N / sqrt(d)) + 0.1, M = U diag(s) V^T with s log-uniform
    over [low, 1e2], so the covariances are full rank with eigenvalues over low^2..1e4."""
    u, v = np.linalg.qr(rng.standard_normal((d, d)))[0], np.linalg.qr(rng.standard_normal((d, d)))[0]
    mix = (u * np.exp(rng.uniform(np.log(low), np.log(1e2), d))) @ v.T
    x = rng.standard_normal((n, d)) @ mix
    if perturb:
        mix = mix @ (np.eye(d) + perturb * rng.standard_normal((d, d)) / np.sqrt(d))
    return x, rng.standard_normal((n, d)) @ mix + 0.1


def _nuclear_norm_jordan(a: np.ndarray) -> float:
    """||a||_* from the eigenvalues +-sigma_i of [[0, a], [a^T, 0]]: an algorithm independent of
    both the SVD and our Gram-matrix paths (absolute error O(k eps ||a||) per value)."""
    k = a.shape[0]
    jordan = np.block([[np.zeros((k, k)), a], [a.T, np.zeros((k, k))]])
    return float(np.sum(np.linalg.eigvalsh(jordan)[k:]))


@pytest.fixture
def nuclear_paths(monkeypatch) -> list[str]:
    """Records the path (`_NuclearNorm.method`) of every nuclear norm the FD functions take."""
    paths: list[str] = []
    real = F._nuclear_norm

    def recording(*args, **kwargs):
        result = real(*args, **kwargs)
        paths.append(result.method)
        return result

    monkeypatch.setattr(F, "_nuclear_norm", recording)
    return paths


# ---------------------------------------------------------------------------- Frechet


class TestFrechetClosedForms:
    @pytest.mark.parametrize("d,shift,scale", [(1, 0.0, 1.0), (3, 0.5, 2.0), (16, 1.5, 0.3)])
    def test_isotropic_gaussians_from_stats(self, d, shift, scale):
        # N(0, I) vs N(m, s^2 I): FD = |m|^2 + d (1 - s)^2
        mu2 = np.full(d, shift)
        fd = F.frechet_distance_from_stats(np.zeros(d), np.eye(d), mu2, scale**2 * np.eye(d))
        expected = d * shift**2 + d * (1.0 - scale) ** 2
        assert fd == pytest.approx(expected, rel=1e-12, abs=1e-12)

    def test_diagonal_covariances_from_stats(self):
        # commuting covariances: FD = |dmu|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2
        rng = _rng(1)
        a, b = rng.uniform(0.1, 5.0, 12), rng.uniform(0.1, 5.0, 12)
        mu1, mu2 = rng.standard_normal(12), rng.standard_normal(12)
        expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
        fd = F.frechet_distance_from_stats(mu1, np.diag(a), mu2, np.diag(b))
        assert fd == pytest.approx(expected, rel=1e-12)

    def test_isotropic_gaussians_from_samples(self):
        rng = _rng(2)
        d, shift, scale = 4, 0.5, 2.0
        x = rng.standard_normal((40000, d))
        y = shift + scale * rng.standard_normal((40000, d))
        expected = d * shift**2 + d * (1.0 - scale) ** 2  # = 5.0
        assert F.frechet_distance(x, y) == pytest.approx(expected, abs=0.08)

    def test_identical_sets_give_zero(self):
        x = np.abs(_rng(3).standard_normal((300, 32)))
        assert F.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
        # row order does not matter
        assert F.frechet_distance(x, x[::-1]) == pytest.approx(0.0, abs=1e-9)

    def test_symmetric_in_its_arguments(self):
        rng = _rng(4)
        x, y = rng.standard_normal((200, 8)), 0.3 + rng.standard_normal((150, 8)) * 1.3
        assert F.frechet_distance(x, y) == pytest.approx(F.frechet_distance(y, x), rel=1e-10)

    def test_gaussian_stats_matches_np_cov(self):
        x = _rng(5).standard_normal((50, 6)).astype(np.float32)
        mu, sigma = F.gaussian_stats(x)
        assert mu.dtype == np.float64 and sigma.shape == (6, 6)
        np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
        np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-12)
        # one feature: still a (1, 1) matrix, ddof = 1
        mu1, s1 = F.gaussian_stats(np.array([[1.0], [3.0]]))
        assert mu1.tolist() == [2.0] and s1.tolist() == [[2.0]]


class TestFrechetAgainstSqrtm:
    @pytest.mark.parametrize("seed,d", [(0, 8), (1, 64), (2, 128), (3, 200)])
    def test_random_spd_stats(self, seed, d):
        rng = _rng(seed)
        s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        ours = F.frechet_distance_from_stats(mu1, s1, mu2, s2)
        ref = _fd_sqrtm_reference(mu1, s1, mu2, s2)
        assert ours == pytest.approx(ref, rel=1e-6)

    def test_embedding_like_stats(self):
        # ReLU-like, correlated, non-centred embeddings (n > d, well conditioned)
        rng = _rng(7)
        mix = np.eye(96) + 0.1 * rng.standard_normal((96, 96))
        x = np.abs(rng.standard_normal((600, 96))) @ mix
        y = np.abs(rng.standard_normal((500, 96))) @ mix + 0.05
        ours = F.frechet_distance(x, y)
        ref = _fd_sqrtm_reference(*F.gaussian_stats(x), *F.gaussian_stats(y))
        assert ours == pytest.approx(ref, rel=1e-6)


class TestFrechetRobustness:
    def test_fewer_samples_than_dims(self):
        rng = _rng(10)
        x, y = rng.standard_normal((20, 64)), 0.2 + rng.standard_normal((25, 64))
        fd = F.frechet_distance(x, y)
        assert isinstance(fd, float) and math.isfinite(fd) and fd > 0.0
        assert F.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
        # the singular case equals the sqrtm formula evaluated in the (<= 44-dim) span where
        # both covariances live, plus the mean difference outside that span
        basis, _ = np.linalg.qr(np.concatenate([x - x.mean(0), y - y.mean(0)]).T)
        xp, yp = x @ basis, y @ basis
        mu1, s1 = F.gaussian_stats(xp)
        mu2, s2 = F.gaussian_stats(yp)
        out_of_span = np.sum(((x.mean(0) - y.mean(0)) @ (np.eye(64) - basis @ basis.T)) ** 2)
        ref = _fd_sqrtm_reference(mu1, s1, mu2, s2) + out_of_span
        assert fd == pytest.approx(ref, rel=1e-8)

    def test_nearly_singular_and_dead_units(self):
        rng = _rng(11)
        x = np.abs(rng.standard_normal((400, 48)))
        x[:, 1] = x[:, 0] + 1e-9 * rng.standard_normal(400)  # near-duplicate feature
        x[:, 5] = 0.0  # dead ReLU unit: exactly zero variance
        x[:, 6] = 3.0  # constant unit
        y = x[rng.permutation(400)[:300]] * 1.01
        for a, b in [(x, y), (y, x), (x, x)]:
            fd = F.frechet_distance(a, b)
            assert isinstance(fd, float) and math.isfinite(fd) and fd >= 0.0
        assert F.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)

    def test_ill_conditioned_scaled_copy(self, nuclear_paths):
        # y = c x: FD = (c - 1)^2 (|mu|^2 + tr(sigma)) exactly. With eigenvalues spread over
        # 1e-14..1 the sqrt(eigvalsh) shortcut is only ~1e-2 accurate at FD ~ 1e-12; the
        # round-off bounds must send this case past both fast paths to the SVD, which is
        # accurate to ~1e-4 here.
        rng = _rng(14)
        d = 40
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        x = (rng.standard_normal((2000, d)) * np.sqrt(np.logspace(0, -14, d))) @ q.T + 0.1
        c = 1.0 + 1e-6
        mu, sigma = F.gaussian_stats(x)
        exact = (c - 1.0) ** 2 * (mu @ mu + np.trace(sigma))
        assert F.frechet_distance(x, c * x) == pytest.approx(exact, rel=1e-3, abs=0.0)
        assert nuclear_paths == ["svd"]
        # a well-conditioned case stays on the fast path
        F.frechet_distance(rng.standard_normal((300, d)), rng.standard_normal((300, d)))
        assert nuclear_paths == ["svd", "eigvalsh"]

    def test_fast_path_equals_svd_path(self):
        rng = _rng(15)
        mix = np.eye(64) + 0.1 * rng.standard_normal((64, 64))
        x, y = np.abs(rng.standard_normal((500, 64))) @ mix, np.abs(rng.standard_normal((400, 64))) @ mix
        a, rest = _cross_factor(x, y)
        values = {m: F._nuclear_norm(a, rest, (m,)) for m in F._NUCLEAR_METHODS}
        assert [v.method for v in values.values()] == list(F._NUCLEAR_METHODS)
        for v in values.values():
            assert v.value == pytest.approx(values["svd"].value, rel=1e-12)

    def test_constant_sets(self):
        # zero covariances: FD = |mu1 - mu2|^2 + tr(sigma2)
        x = np.ones((5, 3))
        assert F.frechet_distance(x, 2.0 * np.ones((4, 3))) == pytest.approx(3.0, rel=1e-12)
        y = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])  # mean (1, 0, 0), var 2 on axis 0
        assert F.frechet_distance(x, y) == pytest.approx(2.0 + 2.0, rel=1e-12)

    def test_never_negative_on_tiny_differences(self):
        rng = _rng(12)
        x = rng.standard_normal((30, 50))
        for eps in (1e-12, 1e-9, 1e-6):
            fd = F.frechet_distance(x, x + eps * rng.standard_normal(x.shape))
            assert 0.0 <= fd < 1e-6

    def test_float32_input_is_promoted(self):
        x = _rng(13).standard_normal((100, 10)).astype(np.float32)
        y = x[::-1] + np.float32(0.5)
        assert F.frechet_distance(x, y) == pytest.approx(
            F.frechet_distance(x.astype(np.float64), y.astype(np.float64)), rel=1e-12
        )
        assert F.frechet_distance(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(
            F.frechet_distance(x, y), rel=1e-12
        )


class TestFrechetIllConditionedFullRank:
    """Issue 17: ordinary full-rank covariances whose eigenvalues span 1e-6..1e4 (random
    linear mixtures of Gaussians, against a shifted set). The sqrt(eigvalsh) bound fails on
    them; the certified bracket must give the same value as an SVD, without an SVD."""

    @pytest.mark.parametrize("seed,perturb", [(0, 0.0), (1, 0.3)])
    def test_certified_path_matches_references_without_svd(self, monkeypatch, nuclear_paths, seed, perturb):
        x, y = _mixture_pair(_rng(seed), 600, 256, perturb=perturb)
        a, rest = _cross_factor(x, y)
        svd_ref = rest - 2.0 * float(np.linalg.svd(a, compute_uv=False).sum())
        jordan_ref = rest - 2.0 * _nuclear_norm_jordan(a)
        assert jordan_ref == pytest.approx(svd_ref, rel=1e-12)  # the two references agree

        def no_svd(*args, **kwargs):
            raise AssertionError("the SVD fallback was used")

        with monkeypatch.context() as patch:
            patch.setattr(np.linalg, "svd", no_svd)
            patch.setattr(scipy.linalg, "svd", no_svd)
            fd = F.frechet_distance(x, y)
        assert fd == pytest.approx(svd_ref, rel=1e-10)
        assert nuclear_paths == ["certified"]
        assert F._nuclear_norm(a, rest, ("eigvalsh",)).error > 1e-8 * svd_ref  # the fast bound fails
        # sqrtm of the product (the reference tools' formula) is only sqrt(eps)-accurate here
        assert _fd_sqrtm_reference(*F.gaussian_stats(x), *F.gaussian_stats(y)) == pytest.approx(fd, rel=1e-5)

    @pytest.mark.parametrize("low,perturb", [(1e-2, 0.0), (1e-3, 0.3), (1e-4, 0.0), (1e-6, 0.3)])
    @pytest.mark.parametrize("levels", [0, 1, F._REFINE_LEVELS])
    @pytest.mark.parametrize("vectors", ["dstemr", "numpy"])
    def test_bracket_bound_covers_the_error(self, monkeypatch, low, perturb, levels, vectors):
        # The bracket holds for any orthogonal V. Fewer refinement levels, or numpy's
        # divide-and-conquer eigenvectors, leave it wider (unresolved columns): whatever its
        # width (1e-12..1e-8 relative here), the SVD value must lie inside the claimed error.
        monkeypatch.setattr(F, "_REFINE_LEVELS", levels)
        x, y = _mixture_pair(_rng(3), 300, 96, low=low, perturb=perturb)
        a, rest = _cross_factor(x, y)
        ref = float(np.linalg.svd(a, compute_uv=False).sum())
        gram = a.T @ a
        vec = F._symmetric_eigen(gram)[1]() if vectors == "dstemr" else np.linalg.eigh(gram)[1]
        value, error = F._bracket_nuclear_norm(a, vec, float(np.trace(gram)))
        assert abs(value - ref) <= error
        assert error < 1e-7 * ref

    def test_unrefined_bracket_falls_back_to_svd(self, monkeypatch, nuclear_paths):
        # Without the refinement of the small-norm columns the bracket is ~1e-7 of FD wide on
        # the hard case: it must not be accepted, and the SVD's value is returned instead.
        x, y = _mixture_pair(_rng(0), 600, 256)
        a, rest = _cross_factor(x, y)
        svd_ref = rest - 2.0 * float(np.linalg.svd(a, compute_uv=False).sum())
        monkeypatch.setattr(F, "_REFINE_LEVELS", 0)
        value, error = F._bracket_nuclear_norm(a, np.linalg.eigh(a.T @ a)[1], float(np.trace(a.T @ a)))
        assert 2.0 * error > 1e-8 * svd_ref
        assert F.frechet_distance(x, y) == pytest.approx(svd_ref, rel=1e-12)
        assert nuclear_paths == ["svd"]

    def test_symmetric_eigen_matches_eigh(self):
        rng = _rng(21)
        for k in (1, 2, 3, 40):
            g = rng.standard_normal((k, k))
            g = g + g.T
            w, vectors = F._symmetric_eigen(g)
            v = vectors()
            np.testing.assert_allclose(w, np.linalg.eigvalsh(g), rtol=0, atol=1e-12 * np.abs(w).max())
            np.testing.assert_allclose(v.T @ v, np.eye(k), atol=100 * k * np.finfo(float).eps)
            assert np.linalg.norm(v.T @ v - np.eye(k), 2) <= F._orthogonality_error(v)
            np.testing.assert_allclose(g @ v, v * w, atol=1e-12 * np.abs(w).max())


class TestFrechetValidation:
    def test_bad_embedding_shapes(self):
        with pytest.raises(ValueError, match="2-D"):
            F.frechet_distance(np.zeros(5), np.zeros((5, 1)))
        with pytest.raises(ValueError, match="same number of columns"):
            F.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
        with pytest.raises(ValueError, match="at least 2 row"):
            F.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
        with pytest.raises(ValueError, match="NaN"):
            F.frechet_distance(np.full((3, 2), np.nan), np.zeros((5, 2)))

    def test_bad_stats(self):
        eye = np.eye(3)
        with pytest.raises(ValueError, match="same length"):
            F.frechet_distance_from_stats(np.zeros(3), eye, np.zeros(2), np.eye(2))
        with pytest.raises(ValueError, match="shape"):
            F.frechet_distance_from_stats(np.zeros(3), np.eye(2), np.zeros(3), eye)
        with pytest.raises(ValueError, match="not symmetric"):
            F.frechet_distance_from_stats(np.zeros(3), eye + np.triu(np.ones((3, 3)), 1), np.zeros(3), eye)
        with pytest.raises(ValueError, match="positive semi-definite"):
            F.frechet_distance_from_stats(np.zeros(3), -eye, np.zeros(3), eye)
        with pytest.raises(ValueError, match="positive semi-definite"):
            F.frechet_distance_from_stats(np.zeros(3), eye, np.zeros(3), np.diag([1.0, 1.0, -0.5]))


# ---------------------------------------------------------------------------- Inception score


def _audioldm_eval_isc_oracle(logits: np.ndarray, splits: int, seed: int | None):
    """Literal transcription of audioldm_eval/metrics/isc.py `calculate_isc` (torch)."""
    features = torch.from_numpy(logits)
    n = features.shape[0]
    if seed is not None:
        rng = np.random.RandomState(seed)
        features = features[rng.permutation(n), :]
    features = features.double()
    p = features.softmax(dim=1)
    log_p = features.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        p_chunk = p[(i * n // splits) : ((i + 1) * n // splits), :]
        log_p_chunk = log_p[(i * n // splits) : ((i + 1) * n // splits), :]
        q_chunk = p_chunk.mean(dim=0, keepdim=True)
        kl = p_chunk * (log_p_chunk - q_chunk.log())
        scores.append(kl.sum(dim=1).mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))


class TestInceptionScore:
    def test_uniform_logits_give_one(self):
        mean, std = F.inception_score(np.zeros((100, 527)))
        assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)

    def test_identical_rows_give_one(self):
        row = _rng(20).standard_normal(30)
        mean, _ = F.inception_score(np.tile(row, (50, 1)), splits=5)
        assert mean == pytest.approx(1.0, abs=1e-12)

    def test_one_hot_gives_number_of_classes(self):
        k = 8
        labels = np.repeat(np.arange(k), 100)  # 800 clips, classes uniformly covered
        logits = np.full((labels.size, 40), -60.0)
        logits[np.arange(labels.size), labels] = 60.0
        # one split: exactly exp(H(uniform over k)) = k
        assert F.inception_score(logits, splits=1)[0] == pytest.approx(k, rel=1e-9)
        # ten shuffled splits of 80: each split ~ balanced, exp(entropy) slightly below k
        mean, std = F.inception_score(logits, splits=10)
        assert 0.93 * k < mean <= k and std < 0.3

    @pytest.mark.parametrize(
        "n,c,splits,seed", [(103, 50, 10, 2020), (40, 527, 10, 2020), (57, 12, 4, 7), (30, 5, 3, None)]
    )
    def test_equals_audioldm_eval_algorithm(self, n, c, splits, seed):
        logits = (3.0 * _rng(n).standard_normal((n, c))).astype(np.float32)
        ours = F.inception_score(logits, splits=splits, seed=seed)
        ref = _audioldm_eval_isc_oracle(logits, splits, seed)
        assert ours[0] == pytest.approx(ref[0], rel=1e-12)
        assert ours[1] == pytest.approx(ref[1], rel=1e-9, abs=1e-12)

    def test_shuffle_matters_and_is_seeded(self):
        # sorted classes: unshuffled splits are each single-class (IS 1), shuffled ones mix
        labels = np.repeat(np.arange(10), 20)
        logits = np.full((200, 10), -30.0)
        logits[np.arange(200), labels] = 30.0
        assert F.inception_score(logits, seed=None)[0] == pytest.approx(1.0, abs=1e-9)
        assert F.inception_score(logits, seed=2020)[0] > 4.0
        assert F.inception_score(logits) == F.inception_score(logits, seed=2020)

    def test_validation(self):
        with pytest.raises(ValueError, match="at least 10 row"):
            F.inception_score(np.zeros((9, 5)))
        with pytest.raises(ValueError, match="splits"):
            F.inception_score(np.zeros((9, 5)), splits=0)
        with pytest.raises(ValueError, match="2 classes"):
            F.inception_score(np.zeros((20, 1)))


# ---------------------------------------------------------------------------- KL


def _audioldm_eval_kl_oracle(gen: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """Transcription of the two KL formulas of audioldm_eval/metrics/kl.py `calculate_kl`."""
    eps = 1e-6
    kl_softmax = torch.nn.functional.kl_div(
        (gen.softmax(dim=1) + eps).log(), ref.softmax(dim=1), reduction="sum"
    ) / len(gen)
    kl_sigmoid = torch.nn.functional.kl_div((gen.sigmoid() + eps).log(), ref.sigmoid(), reduction="sum") / len(gen)
    return float(kl_softmax), float(kl_sigmoid)


class TestKLDivergence:
    def test_identical_inputs(self):
        x = 4.0 * _rng(30).standard_normal((20, 527))
        for kind in ("softmax", "sigmoid"):
            assert F.kl_divergence(x, x, kind=kind, eps=0.0) == pytest.approx(0.0, abs=1e-12)
        # with eps the value is -sum_c q_c * log(1 + eps / q_c), tiny and <= 0
        val = F.kl_divergence(x, x, kind="softmax")
        assert -527 * 1e-6 <= val <= 0.0

    def test_two_class_hand_case_softmax(self):
        eps = 1e-6
        gen = np.array([[0.0, 0.0]])  # softmax -> (0.5, 0.5)
        ref = np.array([[math.log(3.0), 0.0]])  # softmax -> (0.75, 0.25)
        expected = 0.75 * math.log(0.75 / (0.5 + eps)) + 0.25 * math.log(0.25 / (0.5 + eps))
        assert F.kl_divergence(gen, ref, kind="softmax") == pytest.approx(expected, rel=1e-12)
        # direction: KL(ref || gen), not KL(gen || ref)
        swapped = 0.5 * math.log(0.5 / (0.75 + eps)) + 0.5 * math.log(0.5 / (0.25 + eps))
        assert F.kl_divergence(ref, gen, kind="softmax") == pytest.approx(swapped, rel=1e-12)

    def test_two_class_hand_case_sigmoid(self):
        eps = 1e-6
        gen = np.array([[0.0, 0.0], [0.0, 0.0]])  # sigmoid -> 0.5 each
        ref = np.array([[math.log(3.0), math.log(3.0)], [0.0, -math.log(3.0)]])  # 0.75,.75 / .5,.25
        row0 = 2 * 0.75 * math.log(0.75 / (0.5 + eps))
        row1 = 0.5 * math.log(0.5 / (0.5 + eps)) + 0.25 * math.log(0.25 / (0.5 + eps))
        per_clip = F.kl_divergence_per_clip(gen, ref, kind="sigmoid")
        np.testing.assert_allclose(per_clip, [row0, row1], rtol=1e-12)
        assert F.kl_divergence(gen, ref, kind="sigmoid") == pytest.approx((row0 + row1) / 2, rel=1e-12)

    def test_equals_audioldm_eval_formulas(self):
        rng = _rng(31)
        gen = (3.0 * rng.standard_normal((37, 527))).astype(np.float32)
        ref = (3.0 * rng.standard_normal((37, 527))).astype(np.float32)
        # same arithmetic precision: exact up to float64 round-off
        ref64 = _audioldm_eval_kl_oracle(torch.from_numpy(gen).double(), torch.from_numpy(ref).double())
        assert F.kl_divergence(gen, ref, kind="softmax") == pytest.approx(ref64[0], rel=1e-10)
        assert F.kl_divergence(gen, ref, kind="sigmoid") == pytest.approx(ref64[1], rel=1e-10)
        # audioldm_eval itself runs in float32
        ref32 = _audioldm_eval_kl_oracle(torch.from_numpy(gen), torch.from_numpy(ref))
        assert F.kl_divergence(gen, ref, kind="softmax") == pytest.approx(ref32[0], rel=1e-4)
        assert F.kl_divergence(gen, ref, kind="sigmoid") == pytest.approx(ref32[1], rel=1e-4)

    def test_mean_of_per_clip(self):
        rng = _rng(32)
        gen, ref = rng.standard_normal((9, 6)), rng.standard_normal((9, 6))
        per = F.kl_divergence_per_clip(gen, ref)
        assert per.shape == (9,) and np.all(per > -6e-6)
        assert F.kl_divergence(gen, ref) == pytest.approx(per.mean(), rel=1e-14)

    def test_validation(self):
        with pytest.raises(ValueError, match="same shape"):
            F.kl_divergence(np.zeros((3, 4)), np.zeros((2, 4)))
        with pytest.raises(ValueError, match="kind"):
            F.kl_divergence(np.zeros((3, 4)), np.zeros((3, 4)), kind="bernoulli")
        with pytest.raises(ValueError, match="eps"):
            F.kl_divergence(np.zeros((3, 4)), np.zeros((3, 4)), eps=-1.0)


# ---------------------------------------------------------------------------- CLAP


class TestCLAPScore:
    def test_known_vectors(self):
        text = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
        audio = np.array([[1.0, 1.0], [0.0, -3.0], [4.0, -3.0]])
        per = F.clap_score_per_pair(text, audio)
        np.testing.assert_allclose(per, [1 / math.sqrt(2), -1.0, 0.0], atol=1e-15)
        assert F.clap_score(text, audio) == pytest.approx((1 / math.sqrt(2) - 1.0) / 3, rel=1e-14)

    def test_scale_invariant_and_identical_is_one(self):
        rng = _rng(40)
        t, a = rng.standard_normal((10, 512)), rng.standard_normal((10, 512))
        assert F.clap_score(5.0 * t, 0.1 * a) == pytest.approx(F.clap_score(t, a), rel=1e-12)
        assert F.clap_score(t, t) == pytest.approx(1.0, rel=1e-14)

    def test_validation(self):
        with pytest.raises(ValueError, match="zero norm"):
            F.clap_score(np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]))
        with pytest.raises(ValueError, match="same shape"):
            F.clap_score(np.ones((2, 3)), np.ones((3, 3)))


# ---------------------------------------------------------------------------- kernel distance


def _mmd_u_bruteforce(x, y, k) -> float:
    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return kxx + kyy - 2 * kxy


def _audioldm_eval_polynomial_mmd(f1, f2) -> float:
    """Transcription of audioldm_eval/metrics/kid.py `polynomial_mmd` (degree 3, gamma 1/d)."""

    def kern(a, b):
        return (a @ b.T * (1.0 / a.shape[1]) + 1) ** 3

    k_xx, k_yy, k_xy = kern(f1, f1), kern(f2, f2), kern(f1, f2)
    m = k_xx.shape[0]
    kt_xx = (k_xx.sum(axis=1) - np.diagonal(k_xx)).sum()
    kt_yy = (k_yy.sum(axis=1) - np.diagonal(k_yy)).sum()
    return (kt_xx + kt_yy) / (m * (m - 1)) - 2 * k_xy.sum(axis=0).sum() / (m * m)


class TestKernelDistance:
    def test_rbf_matches_definition(self):
        rng = _rng(50)
        x, y = rng.standard_normal((5, 3)), 0.5 + rng.standard_normal((7, 3))
        sigma = 1.7

        def k(a, b):
            return math.exp(-np.sum((a - b) ** 2) / (2 * sigma**2))

        expected = _mmd_u_bruteforce(x, y, k)
        assert F.kernel_distance(x, y, bandwidth=sigma) == pytest.approx(expected, rel=1e-12)

    def test_median_bandwidths(self):
        rng = _rng(51)
        x, y = rng.standard_normal((6, 4)), 1.0 + 2.0 * rng.standard_normal((5, 4))
        z = np.concatenate([x, y])
        pooled = np.median([np.linalg.norm(z[i] - z[j]) for i in range(11) for j in range(i + 1, 11)])
        ref_only = np.median([np.linalg.norm(y[i] - y[j]) for i in range(5) for j in range(i + 1, 5)])
        assert F.kernel_distance(x, y) == pytest.approx(F.kernel_distance(x, y, bandwidth=float(pooled)), rel=1e-12)
        assert F.kernel_distance(x, y, bandwidth="median_ref") == pytest.approx(
            F.kernel_distance(x, y, bandwidth=float(ref_only)), rel=1e-12
        )
        assert pooled != pytest.approx(ref_only)

    def test_poly_matches_definition_and_audioldm_eval(self):
        rng = _rng(52)
        x, y = rng.standard_normal((6, 5)), 0.3 + rng.standard_normal((4, 5))

        def k(a, b):
            return (a @ b / 5 + 1.0) ** 3

        assert F.kernel_distance(x, y, kernel="poly") == pytest.approx(_mmd_u_bruteforce(x, y, k), rel=1e-12)
        x2, y2 = rng.standard_normal((40, 16)), 0.2 + rng.standard_normal((40, 16))
        assert F.kernel_distance(x2, y2, kernel="poly") == pytest.approx(
            _audioldm_eval_polynomial_mmd(x2, y2), rel=1e-10
        )

    def test_identical_sets_near_zero(self):
        x = _rng(53).standard_normal((200, 16))
        for kernel in ("rbf", "poly"):
            val = F.kernel_distance(x, x, kernel=kernel)
            # MMD^2_u(x, x) = 2 * (mean off-diagonal k - mean k) <= 0, |.| <= 2 max k / n
            assert val <= 0.0
        assert abs(F.kernel_distance(x, x)) <= 2.0 / 200

    def test_separated_sets_are_far(self):
        rng = _rng(54)
        x = rng.standard_normal((150, 8))
        same = F.kernel_distance(x, rng.standard_normal((150, 8)))
        shifted = F.kernel_distance(x, 2.0 + rng.standard_normal((150, 8)))
        assert abs(same) < 0.02 and shifted > 0.3

    def test_blockwise_equals_single_block(self, monkeypatch):
        rng = _rng(55)
        x, y = rng.standard_normal((23, 4)), rng.standard_normal((17, 4)) + 0.4
        full = F.kernel_distance(x, y)
        monkeypatch.setattr(F, "_KERNEL_BLOCK_ROWS", 5)
        assert F.kernel_distance(x, y) == pytest.approx(full, rel=1e-12)

    def test_validation(self):
        x = np.zeros((4, 2))
        with pytest.raises(ValueError, match="bandwidth"):
            F.kernel_distance(x, x + 1.0, kernel="poly", bandwidth=1.0)
        with pytest.raises(ValueError, match="kernel"):
            F.kernel_distance(x, x, kernel="laplace")
        with pytest.raises(ValueError, match="bandwidth"):
            F.kernel_distance(x, x)  # all points coincide: median distance 0
        with pytest.raises(ValueError, match="bandwidth"):
            F.kernel_distance(x, x + 1.0, bandwidth=-1.0)


# ---------------------------------------------------------------------------- bootstrap


class TestBootstrap:
    def test_ci_contains_point_estimate_and_is_deterministic(self):
        rng = _rng(60)
        t = rng.standard_normal((200, 16))
        a = t + 0.8 * rng.standard_normal((200, 16))
        point = F.clap_score(t, a)
        ci = F.bootstrap_ci(F.clap_score, t, a, paired=True, n_resamples=100, seed=3)
        assert ci[0] < point < ci[1]
        assert ci == F.bootstrap_ci(F.clap_score, t, a, paired=True, n_resamples=100, seed=3)
        assert ci != F.bootstrap_ci(F.clap_score, t, a, paired=True, n_resamples=100, seed=4)

    def test_paired_keeps_rows_together(self):
        rng = _rng(61)
        b = rng.standard_normal(300)
        a = b + 1.0

        def mean_diff(u, v):
            return float(np.mean(u - v))

        low, high = F.bootstrap_ci(mean_diff, a, b, paired=True, n_resamples=50)
        assert low == pytest.approx(1.0, abs=1e-12) and high == pytest.approx(1.0, abs=1e-12)
        low_u, high_u = F.bootstrap_ci(mean_diff, a, b, paired=False, n_resamples=50)
        assert high_u - low_u > 0.1

    def test_percentiles_of_replicates(self):
        data = _rng(62).standard_normal(50)
        low, high = F.bootstrap_ci(np.mean, data, n_resamples=40, confidence=0.9, seed=11)
        rng = np.random.default_rng(11)
        reps = [np.mean(data[rng.integers(0, 50, size=50)]) for _ in range(40)]
        np.testing.assert_allclose([low, high], np.percentile(reps, [5.0, 95.0]), rtol=1e-12)

    def test_frechet_ci(self):
        rng = _rng(63)
        x, y = rng.standard_normal((2000, 3)), 0.5 + rng.standard_normal((2000, 3))
        low, high = F.bootstrap_frechet_ci(x, y, n_resamples=40, seed=1)
        assert low < F.frechet_distance(x, y) < high and high - low < 0.3

    def test_validation(self):
        with pytest.raises(ValueError, match="equal length"):
            F.bootstrap_ci(F.clap_score, np.ones((3, 2)), np.ones((4, 2)), paired=True)
        with pytest.raises(ValueError, match="confidence"):
            F.bootstrap_ci(np.mean, np.ones(3), confidence=1.0)
        with pytest.raises(ValueError, match="n_resamples"):
            F.bootstrap_ci(np.mean, np.ones(3), n_resamples=1)
        with pytest.raises(ValueError, match="at least one array"):
            F.bootstrap_ci(np.mean)


# ---------------------------------------------------------------------------- FD-infinity


class TestFrechetInfinity:
    def test_fit_recovers_exact_line(self):
        ns = np.array([100, 250, 400, 1000, 3000])
        intercept, slope, r2 = F.fit_inverse_n(ns, 2.5 + 40.0 / ns)
        assert intercept == pytest.approx(2.5, rel=1e-10)
        assert slope == pytest.approx(40.0, rel=1e-10)
        assert r2 == pytest.approx(1.0, abs=1e-12)

    def test_recovers_intercept_on_gaussian_data(self):
        # same distribution: FD(n) ~ FD(x, y) + b / n with b ~ d + d(d+1)/4 = 84 for d = 16
        rng = _rng(70)
        x, y = rng.standard_normal((4000, 16)), rng.standard_normal((40000, 16))
        fd_inf, slope, r2 = F.frechet_distance_infinity(x, y, min_n=100, num_points=15, seed=0)
        assert fd_inf == pytest.approx(F.frechet_distance(x, y), abs=0.03)
        assert 0.7 * 84 < slope < 1.3 * 84 and r2 > 0.98
        assert (fd_inf, slope, r2) == F.frechet_distance_infinity(x, y, min_n=100, num_points=15)

    def test_validation(self):
        x = np.zeros((10, 2))
        with pytest.raises(ValueError, match="min_n"):
            F.frechet_distance_infinity(x, x, min_n=10)
        with pytest.raises(ValueError, match="num_points"):
            F.frechet_distance_infinity(x, x, min_n=3, num_points=1)
        with pytest.raises(ValueError, match="distinct"):
            F.fit_inverse_n([5, 5], [1.0, 2.0])
