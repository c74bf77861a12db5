"""Pure metric math over embedding / logit arrays (numpy, float64 internally).

Every function here takes plain arrays (numpy arrays, torch CPU tensors or nested lists:
anything `np.asarray` accepts), validates shapes with clear `ValueError`s and returns
Python floats (or small tuples / numpy arrays). Nothing here knows about audio,
backbones, files or caches.

Conventions shared by all functions:
  * an "embedding set" is a 2-D array of shape (n_rows, n_dims): one row per clip (or per
    frame, for frame-pooled metrics such as VGGish FAD);
  * "paired" functions (KL, CLAP) take two arrays whose row i belongs to the same item;
  * all arithmetic is done in float64 whatever the input dtype.

Definitions follow the field's reference tools (haoheliu/audioldm_eval,
microsoft/fadtk, mseitzer/pytorch-fid); where we deliberately differ (only in *how* a
quantity is computed, never in *what* it is) the docstring says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

import numpy as np
import scipy.linalg
from scipy.special import expit, xlogy

__all__ = [
    "gaussian_stats",
    "frechet_distance",
    "frechet_distance_from_stats",
    "inception_score",
    "kl_divergence",
    "kl_divergence_per_clip",
    "kl_divergence_of_probabilities",
    "clap_score",
    "clap_score_per_pair",
    "kernel_distance",
    "bootstrap_ci",
    "bootstrap_frechet_ci",
    "fit_inverse_n",
    "frechet_distance_infinity",
]

_EPS64 = float(np.finfo(np.float64).eps)

# A symmetric input is accepted when max|S - S^T| <= _SYM_RTOL * max|S| (float32-computed
# covariances are symmetric only to ~1e-7 relative); it is then replaced by (S + S^T) / 2.
_SYM_RTOL = 1e-5
# A covariance is rejected as "not positive semi-definite" when its smallest eigenvalue is
# below -_PSD_RTOL * (largest eigenvalue magnitude). Smaller negative eigenvalues are round-off
# (a covariance of n < d samples has d - n + 1 eigenvalues that are exactly 0 in exact
# arithmetic and about +-1e-16 relative in float64, +-1e-7 in float32) and are set to 0.
_PSD_RTOL = 1e-4

# Accuracy target of the Frechet distance: `_nuclear_norm` returns the first of the fast
# sqrt(eigvalsh(Gram)) path and the certified bracket whose round-off bound e satisfies
# 2 e <= _FD_RTOL * FD (FD = the other terms - 2 * nuclear norm), else an SVD.
_FD_RTOL = 1e-8
# Certified path: columns b_j of B = A V with |b_j|^2 < _REFINE_FACTOR * (eigenvalue error
# bound of the Gram matrix they came from) are re-diagonalised as one trailing block, at
# most _REFINE_LEVELS times. On 2048-d covariances with eigenvalues over 1e-6..1e4 one level
# re-diagonalises 44% of the columns; the result is then off by ~1e-16 relative, within a
# bound of ~2e-13 that the round-off terms dominate (benchmarks/bench_frechet.py, measured).
_REFINE_FACTOR = 10.0
_REFINE_LEVELS = 6

# Rows of kernel matrices are evaluated in blocks of this many rows to bound memory.
_KERNEL_BLOCK_ROWS = 1024


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------


def _as_2d(a: Any, name: str, *, min_rows: int = 1) -> np.ndarray:
    """Return `a` as a finite float64 array of shape (n, d) with n >= min_rows, d >= 1."""
    arr = np.asarray(_to_numpy(a), dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_rows, n_dims), got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one column, got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} row(s), got {arr.shape[0]} (shape {arr.shape})")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _to_numpy(a: Any) -> Any:
    """Convert a torch tensor (any device, with or without grad) to numpy; else pass through."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):
        return a.detach().cpu().numpy()
    return a


def _same_dims(x: np.ndarray, y: np.ndarray, xname: str, yname: str) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{xname} and {yname} must have the same number of columns, got {x.shape[1]} and {y.shape[1]}")


def _same_shape(x: np.ndarray, y: np.ndarray, xname: str, yname: str) -> None:
    if x.shape != y.shape:
        raise ValueError(
            f"{xname} and {yname} are paired row by row and must have the same shape, got {x.shape} and {y.shape}"
        )


def _check_mean(mu: Any, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(_to_numpy(mu), dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D mean vector, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_cov(sigma: Any, d: int, name: str) -> np.ndarray:
    """Validate a (d, d) finite, symmetric matrix and return its exact symmetrisation."""
    arr = np.atleast_2d(np.asarray(_to_numpy(sigma), dtype=np.float64))
    if arr.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}) to match the mean, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    scale = float(np.max(np.abs(arr))) if arr.size else 0.0
    asym = float(np.max(np.abs(arr - arr.T))) if arr.size else 0.0
    if asym > _SYM_RTOL * scale:
        raise ValueError(
            f"{name} is not symmetric: max|S - S^T| = {asym:.3g} > {_SYM_RTOL:g} * max|S| (= {_SYM_RTOL * scale:.3g})"
        )
    return (arr + arr.T) * 0.5


# --------------------------------------------------------------------------------------
# Frechet distance
# --------------------------------------------------------------------------------------


def gaussian_stats(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of an embedding set, as the reference tools compute them.

    mu = mean of the rows of x; sigma = np.cov(x, rowvar=False), i.e. the unbiased sample
    covariance sum_i (x_i - mu)(x_i - mu)^T / (n - 1) (ddof = 1), exactly as
    audioldm_eval, pytorch-fid and fadtk do. Computed in float64.

    Args:
        x: (n, d) embeddings, n >= 2.

    Returns:
        (mu, sigma) with shapes (d,) and (d, d).
    """
    arr = _as_2d(x, "x", min_rows=2)
    mu = arr.mean(axis=0)
    sigma = np.atleast_2d(np.cov(arr, rowvar=False))
    return mu, sigma


def _psd_factor(sigma: np.ndarray, name: str) -> np.ndarray:
    """Return F (d, k) with F F^T = sigma, for a symmetric positive semi-definite sigma.

    Fast path: the Cholesky factor (k = d) when sigma is numerically positive definite
    (Cholesky is backward stable: C C^T equals sigma up to O(d * eps * max diag)).
    Otherwise (singular covariances, e.g. fewer samples than dimensions, or dead
    features with zero variance): the eigen-factor V_k diag(sqrt(w_k)) of the
    eigenvalues w_k > d * eps * max(w) (the numerical rank, as numpy.linalg.matrix_rank
    uses); smaller eigenvalues, and negative ones down to -_PSD_RTOL * max(w), are
    round-off and treated as exactly 0. More negative eigenvalues raise ValueError.
    """
    d = sigma.shape[0]
    try:
        # scipy's dpotrf wrapper: 0.10 s against numpy.linalg.cholesky's 0.16-0.20 s at d = 2048
        # sigma is exactly symmetric (`_check_cov`), so its transpose is the same matrix in the
        # Fortran order LAPACK wants: no copy
        return scipy.linalg.cholesky(sigma.T, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        pass
    w, v = np.linalg.eigh(sigma)
    w_min, w_max = float(w[0]), float(w[-1])
    if w_min < -_PSD_RTOL * max(abs(w_min), abs(w_max)):
        raise ValueError(
            f"{name} is not positive semi-definite: smallest eigenvalue {w_min:.3g} "
            f"< -{_PSD_RTOL:g} * largest magnitude ({max(abs(w_min), abs(w_max)):.3g}); "
            "it is not a covariance matrix"
        )
    if w_max <= 0.0:  # the zero matrix (e.g. a set of identical embeddings)
        return np.zeros((d, 0))
    keep = w > d * _EPS64 * w_max
    return v[:, keep] * np.sqrt(w[keep])


@dataclass(frozen=True)
class _NuclearNorm:
    """||a||_* with a bound on its round-off error and the path that produced it."""

    value: float
    error: float
    method: str  # "eigvalsh" | "certified" | "svd" | "empty"


_NUCLEAR_METHODS = ("eigvalsh", "certified", "svd")


def _nuclear_norm(a: np.ndarray, fd_rest: float, methods: Sequence[str] = _NUCLEAR_METHODS) -> _NuclearNorm:
    """Sum of the singular values of `a`, with a bound on its round-off error.

    The paths in `methods` are tried in order; a result is returned as soon as its bound e
    meets the Frechet-distance target, 2 e <= _FD_RTOL * (fd_rest - 2 * value) (fd_rest: the
    other FD terms, ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2)). The last path (the SVD by
    default) is returned whatever its bound: for nearly identical sets (FD below about 1e-4
    of ||a||_* at k = 2048, where the bracket's own round-off floor is too wide) no path can
    promise the target, and the SVD is the most accurate in practice. k = the smaller side
    of `a`, G = its Gram matrix.

    "eigvalsh": singular values sqrt(eigvalsh(G)). Forming G and its eigenvalues perturbs
    each eigenvalue by about delta = sqrt(k) * eps * tr(G) (LAPACK's approximate error bound
    eps * ||G|| times a statistical sqrt(k) growth factor; tr(G) >= ||G||_2), so each square
    root is off by at most min(sqrt(delta), delta / sqrt(lambda_i)). One symmetric eigenvalue
    problem, but small singular values only get sqrt(eps)-sized bounds: the bound fails on
    ordinary ill-conditioned covariances although the values are accurate there.

    "certified" (`_bracket_nuclear_norm`): for ANY orthogonal V, B = a V has
        sum_j r_jj <= ||a||_* <= sum_j ||b_j||,
    R the triangular factor of B (upper: ||M||_* <= sum of its column norms; lower: von
    Neumann, tr(Q^T B) <= ||B||_*). With V the eigenvectors of G the columns are nearly
    orthogonal and the two sides agree to second order in their cosines. The bound is a
    posteriori, so it is tight when the eigenvectors are good, whatever the conditioning:
    ~2e-13 of ||a||_* on the hard cases of benchmarks/bench_frechet.py, where the actual
    error is ~1e-16 and the eigvalsh bound misses the target by 4e4x. Costs the
    eigenvectors of G (sharing the eigvalsh path's tridiagonalisation) and a few k x k
    matrix products, all but dstemr matrix-matrix work: 1.5 s at k = 2048 on 2 idle cores,
    as much as the SVD (1.4-1.6 s), but 4.4 s against the SVD's 11 s beside two
    memory-streaming processes (benchmarks/RESULTS.md).

    "svd": sum of the singular values from an SVD of `a`, error k^2 * eps * sigma_max
    (absolute error k * eps * sigma_max per value). Backward stable; its bidiagonalisation is
    half matrix-vector work, which slows most when the machine is shared (14 s of 21 s in
    issue 17's measurement).
    """
    if a.size == 0:
        return _NuclearNorm(0.0, 0.0, "empty")
    if a.shape[1] > a.shape[0]:
        a = a.T
    k = a.shape[1]
    gram = a.T @ a
    tr_gram = max(float(np.trace(gram)), 0.0)
    delta = np.sqrt(k) * _EPS64 * tr_gram

    def good(r: _NuclearNorm) -> bool:
        return 2.0 * r.error <= _FD_RTOL * (fd_rest - 2.0 * r.value)

    unknown = [m for m in methods if m not in _NUCLEAR_METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown nuclear-norm methods {unknown or methods!r}; use some of {_NUCLEAR_METHODS}")
    eigen: tuple[np.ndarray, Callable[[], np.ndarray]] | None = None  # shared by the two fast paths
    result: _NuclearNorm | None = None
    for i, method in enumerate(methods):
        if method != "svd" and eigen is None:
            eigen = _symmetric_eigen(gram)
        if method == "eigvalsh":
            lam = np.clip(eigen[0], 0.0, None)
            roots = np.sqrt(lam)
            with np.errstate(divide="ignore"):
                per_value = np.where(roots > 0.0, np.minimum(np.sqrt(delta), delta / roots), np.sqrt(delta))
            result = _NuclearNorm(float(roots.sum()), float(per_value.sum()), method)
        elif method == "certified":
            if i < len(methods) - 1 and result is not None and not _bracket_can_meet(result, k, tr_gram, fd_rest):
                continue  # nearly identical sets: not even the bracket's round-off floor would do
            result = _NuclearNorm(*_bracket_nuclear_norm(a, eigen[1](), tr_gram), method)
        else:
            sv = scipy.linalg.svd(a, compute_uv=False, check_finite=False)
            result = _NuclearNorm(float(sv.sum()), float(k * k * _EPS64 * sv[0]), method)
        if i == len(methods) - 1 or good(result):
            break
    assert result is not None
    return result


def _bracket_can_meet(estimate: _NuclearNorm, k: int, tr_gram: float, fd_rest: float) -> bool:
    """False when the certified bracket cannot meet the FD target whatever its eigenvectors.

    Its half-width is at least its round-off floor, rho + k eps ||a||_* (the column errors of
    a V and the measured non-orthogonality, >= 2 k eps; see `_bracket_nuclear_norm`), while
    FD is at most the eigvalsh estimate plus twice that estimate's bound. Skipping the
    bracket then saves its cost (1.5 s at k = 2048) before the SVD, e.g. for identical sets.
    """
    floor = k * np.sqrt(k) * _EPS64 * np.sqrt(tr_gram) + k * _EPS64 * estimate.value
    return 2.0 * floor <= _FD_RTOL * (fd_rest - 2.0 * estimate.value + 2.0 * estimate.error)


def _symmetric_eigen(g: np.ndarray) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
    """Eigenvalues (ascending) of a symmetric g now, and a function giving its eigenvectors.

    One Householder tridiagonalisation serves both, so asking for the eigenvectors after the
    eigenvalues costs no second reduction: LAPACK dsytrd + dsterf (what dsyev does for
    eigenvalues), then MRRR (dstemr) on the tridiagonal matrix and dormqr to apply the
    reflectors (what dsyevr does for eigenvectors). Measured at k = 2048 on 2 idle cores
    (best of 4): 0.31 s for the eigenvalues and 0.55 s more for the eigenvectors, against
    0.29 s for scipy.linalg.eigh(eigvals_only) plus 0.77 s for scipy.linalg.eigh.
    """
    k = g.shape[0]
    lapack = scipy.linalg.lapack
    if k < 3:
        w, v = np.linalg.eigh(g)
        return w, lambda: v
    lwork = int(lapack.dsytrd_lwork(k, lower=1)[0])
    packed, d, e, tau, info = lapack.dsytrd(g.T, lower=1, lwork=lwork)  # g.T: Fortran order, no copy
    if info != 0:
        raise np.linalg.LinAlgError(f"dsytrd failed (info {info})")
    w, info = lapack.dsterf(d, e)
    if info != 0:
        raise np.linalg.LinAlgError(f"dsterf failed to converge (info {info})")

    def vectors() -> np.ndarray:
        # MRRR (dstemr), as dsyevr uses: it keeps the relative accuracy of the graded
        # tridiagonal matrices that Gram matrices of ill-conditioned factors give, where
        # divide and conquer (dstevd) mixes the eigenvectors of small eigenvalues (on the
        # d = 256 hard case of bench_frechet.py: bracket 2.6e-10 with dstevd, 1e-14 with dstemr).
        z = scipy.linalg.eigh_tridiagonal(d, e, lapack_driver="stemr", check_finite=False)[1]
        # Q = H(1) ... H(k-1), reflector i stored below the subdiagonal of column i: it acts on
        # rows 1.. (0-based) exactly as a QR factor of the trailing (k-1) x (k-1) block does.
        reflectors = np.asfortranarray(packed[1:, :-1])
        rows = np.asfortranarray(z[1:, :])
        # workspace: block size 64 times the columns plus the 65 x 64 triangular factor
        rows, _, info = lapack.dormqr("L", "N", reflectors, tau, rows, lwork=64 * k + 4160, overwrite_c=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"dormqr failed (info {info})")
        z[1:, :] = rows
        return z

    return w, vectors


def _orthogonality_error(v: np.ndarray) -> float:
    """Bound on ||V^T V - I||_2 for computed eigenvectors V (k x k), measured.

    ||fl(V^T V) - I||_F plus the round-off of that product (entries off by about sqrt(k) eps,
    a k x k matrix of them has 2-norm about 2 k eps). Measured at k = 2048 on the hard case of
    benchmarks/bench_frechet.py: 1e-13 + 9e-13, where LAPACK's a-priori O(k eps) carries an
    unknown constant (14 k eps seen at k = 40). One k x k matrix product (0.15 s at k = 2048).
    """
    k = v.shape[1]
    gram = v.T @ v
    gram[np.diag_indices(k)] -= 1.0
    return float(np.linalg.norm(gram)) + 2.0 * k * _EPS64


def _bracket_nuclear_norm(a: np.ndarray, vec: np.ndarray, tr_gram: float) -> tuple[float, float]:
    """(estimate, error) from a certified bracket of ||a||_* (a: m x k, m >= k).

    vec: eigenvectors of G = a^T a (ascending eigenvalues). B = a vec (columns in descending
    order). Columns whose squared norm is below _REFINE_FACTOR times the eigenvalue error
    bound of the Gram matrix they came from are not resolved by its eigenvectors (their
    cosines can be O(1)), so that trailing block is re-diagonalised by the eigenvectors of its
    own, much smaller-normed, Gram matrix; rotating columns among themselves keeps V
    orthogonal. The bracket (see `_nuclear_norm`) is then evaluated with the lower side from
    the Cholesky factor R~ of the column-scaled Gram matrix Gamma = D^-1 B^T B D^-1
    (D = diag(||b_j||), columns in descending norm): tr(R~ D) <= sqrt(1 + phi /
    lambda_min(Gamma)) ||B||_* (Loewner order; R~^T R~ = Gamma + Phi), phi >= ||Phi||_2
    bounding the round-off of Gamma and of the factorisation, and lambda_min(Gamma) >=
    (1 - ||R~ - diag R~||_F - max|1 - R~_jj|)^2 - phi. It uses the longest leading set of
    columns for which that is >= 1/4; unresolved columns (still large cosines) are left to
    the upper side, so they widen the bracket by their norms instead of spoiling it.
    Round-off terms (realistic sqrt(n) growth for length-n dot products, as in
    `_nuclear_norm`) are added on both sides: column errors of the products a V (summed:
    rho), non-orthogonality of V (measured, `_orthogonality_error`, per eigen-decomposition;
    it scales all singular values by at most sqrt(1 +- that)) and rounding of the norms and
    scalings.
    """
    m, k = a.shape
    eps = _EPS64
    fro = np.sqrt(tr_gram)
    b = a @ np.ascontiguousarray(vec[:, ::-1])
    rho = k * np.sqrt(k) * eps * fro  # sum_j ||fl(a v_j) - a v_j|| <= k * sqrt(k) eps ||a||_F
    eps_v = _orthogonality_error(vec)
    norms = np.sqrt(np.einsum("ij,ij->j", b, b))
    delta = np.sqrt(k) * eps * tr_gram
    start = 0
    for _ in range(_REFINE_LEVELS):
        small = np.flatnonzero(norms[start:] ** 2 < _REFINE_FACTOR * delta)
        if small.size == 0 or k - (start + int(small[0])) < 2:
            break
        start += int(small[0])
        block = b[:, start:]
        gram_b = block.T @ block
        k_b = gram_b.shape[0]
        z = _symmetric_eigen(gram_b)[1]()
        block = block @ np.ascontiguousarray(z[:, ::-1])
        b[:, start:] = block
        norms[start:] = np.sqrt(np.einsum("ij,ij->j", block, block))
        tr_b = max(float(np.trace(gram_b)), 0.0)
        delta = np.sqrt(k_b) * eps * tr_b
        rho += k_b * np.sqrt(k_b) * eps * np.sqrt(tr_b)
        eps_v += _orthogonality_error(z)
    upper_b = float(norms.sum()) * (1.0 + (np.sqrt(m) + np.log2(k) + 2.0) * eps)  # norms, pairwise sum
    # The lower side may use any subset J of the columns (||[B_J, B_rest]||_* >= ||B_J||_*;
    # the upper side keeps them all): the columns above the round-off level of the products,
    # in descending norm, up to the longest leading run whose scaled Gram matrix is provably
    # well conditioned (lambda_min >= 1/4). Columns left out widen the bracket by their norms.
    keep = np.flatnonzero(norms > np.sqrt(k) * eps * fro)
    keep = keep[np.argsort(-norms[keep], kind="stable")]
    lower_b = lower_raw = 0.0
    if keep.size:
        scale = norms[keep]
        scaled = np.take(b, keep, axis=1)
        del b
        scaled /= scale
        gamma = scaled.T @ scaled
        del scaled
        k_keep = keep.size
        # dpotrf factors the leading block of order info - 1 when info > 0
        r, info = scipy.linalg.lapack.dpotrf(gamma.T, lower=0, clean=1, overwrite_a=1)  # symmetric
        n_ok = k_keep if info == 0 else max(info - 1, 0)
        r = r[:n_ok, :n_ok]
        diag = np.diag(r).copy()
        # ||Phi||_2: entries of Phi (round-off of the scaled Gram matrix and the Cholesky
        # backward error) are about eps_c = (sqrt(m) + sqrt(k) + 2) eps; a k x k matrix of such
        # errors has 2-norm about 2 sqrt(k) eps_c (as for `_orthogonality_error`)
        phi = 2.0 * np.sqrt(k_keep) * (np.sqrt(m) + np.sqrt(k_keep) + 2.0) * eps
        r[np.diag_indices(n_ok)] = 0.0
        # ||R~_J - diag||_F over leading blocks J, and the worst diagonal deviation so far
        off = np.sqrt(np.cumsum(np.einsum("ij,ij->j", r, r)))
        sigma_min = 1.0 - off - np.maximum.accumulate(np.abs(1.0 - diag))
        lam_min = np.where(sigma_min > 0.0, sigma_min * sigma_min, 0.0) - phi
        n_lower = int(np.count_nonzero(lam_min >= 0.25))  # lam_min decreases along J: a prefix
        if n_lower:
            lower_raw = float(scale[:n_lower] @ diag[:n_lower])  # = tr(R~_J D_J)
            lower_b = lower_raw * (1.0 - n_lower * eps) / np.sqrt(1.0 + phi / lam_min[n_lower - 1])
            lower_b -= eps * upper_b  # scaling b_j / ||b_j|| rounds each column by eps relative
    upper = (upper_b + rho) / np.sqrt(1.0 - eps_v)
    lower = max(lower_b - rho, 0.0) / np.sqrt(1.0 + eps_v)
    # The estimate is the midpoint of the two computed sums, which the round-off terms above
    # only widen (they are bounds, not corrections); the error covers the whole bracket.
    estimate = min(max(0.5 * (float(norms.sum()) + lower_raw), lower), upper)
    return estimate, max(upper - estimate, estimate - lower)


def frechet_distance_from_stats(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Definition (pytorch-fid, audioldm_eval, fadtk):
        FD = ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr( (sigma1 sigma2)^(1/2) ),
    the squared 2-Wasserstein distance between the two Gaussians.

    How it is computed (same quantity, no matrix square root of a non-symmetric matrix):
    factor each covariance as sigma_i = F_i F_i^T (Cholesky, or an eigen-factor when the
    covariance is singular, see `_psd_factor`). The eigenvalues of sigma1 sigma2 are the
    eigenvalues of F1^T sigma2 F1 = A^T A with A = F2^T F1, i.e. the squared singular
    values of A, so tr((sigma1 sigma2)^(1/2)) = ||A||_* (nuclear norm), and
    tr(sigma_i) = ||F_i||_F^2. Hence

        FD = ||mu1 - mu2||^2 + ||F1||_F^2 + ||F2||_F^2 - 2 ||F2^T F1||_*
           = ||mu1 - mu2||^2 + min over orthogonal U of ||F1 - F2 U||_F^2   (Procrustes),

    non-negative by construction and never complex. ||A||_* comes with a round-off bound
    e, and a fast path is used only when 2 e <= 1e-8 * FD: square roots of the eigenvalues
    of the Gram matrix A^T A when their a-priori bound allows it (well-conditioned
    covariances), else a certified bracket from the eigenvectors of A^T A (ill-conditioned
    full-rank covariances, where square roots of small eigenvalues of a product only get
    sqrt(eps)-sized a-priori bounds); otherwise an SVD of A, returned whatever its bound
    (nearly identical sets, FD ~ 0; see `_nuclear_norm`). scipy.linalg.sqrtm of sigma1 sigma2, as the reference tools
    use, is only sqrt(eps)-accurate on such covariances (4e-7 relative on the hard case of
    benchmarks/bench_frechet.py) and 6-10x slower at d = 2048 (benchmarks/RESULTS.md).

    Negative results: in exact arithmetic the value is >= 0. A computed value in
    [-tol, 0), tol = 2 * (error bound of ||A||_*) + 16 * d * eps64 * (||mu1 - mu2||^2 +
    tr(sigma1) + tr(sigma2)), is round-off and returned as 0.0; anything more negative
    cannot come from valid covariances and raises RuntimeError (a bug, never passed on).

    Args:
        mu1, mu2: (d,) means. sigma1, sigma2: (d, d) symmetric positive semi-definite
            covariances (symmetric to 1e-5 relative; negative eigenvalues down to
            -1e-4 * largest are treated as round-off and set to 0).

    Returns:
        The Frechet distance as a Python float (>= 0).
    """
    m1 = _check_mean(mu1, "mu1")
    m2 = _check_mean(mu2, "mu2")
    if m1.shape != m2.shape:
        raise ValueError(f"mu1 and mu2 must have the same length, got {m1.shape} and {m2.shape}")
    d = m1.shape[0]
    s1 = _check_cov(sigma1, d, "sigma1")
    s2 = _check_cov(sigma2, d, "sigma2")
    return _frechet_from_factors(m1, m2, _psd_factor(s1, "sigma1"), _psd_factor(s2, "sigma2"))


def _frechet_from_factors(m1: np.ndarray, m2: np.ndarray, f1: np.ndarray, f2: np.ndarray) -> float:
    """FD given means and covariance factors sigma_i = F_i F_i^T (F_i: d x r_i)."""
    d = m1.shape[0]
    diff = m1 - m2
    mean_term = float(diff @ diff)
    tr1 = float(np.sum(f1 * f1))
    tr2 = float(np.sum(f2 * f2))
    rest = mean_term + tr1 + tr2
    cross = _nuclear_norm(f2.T @ f1, rest)
    fd = rest - 2.0 * cross.value
    if fd < 0.0:
        tol = 2.0 * cross.error + 16.0 * max(d, 1) * _EPS64 * rest
        if fd < -tol:
            raise RuntimeError(
                f"Frechet distance came out at {fd:.6g}, below the round-off bound -{tol:.3g}; "
                "this should be impossible for PSD covariances"
            )
        fd = 0.0
    return float(fd)


def frechet_distance(x: Any, y: Any) -> float:
    """Frechet distance between two embedding sets.

    FD(x, y) = frechet_distance_from_stats(*gaussian_stats(x), *gaussian_stats(y)): each
    set is summarised by its mean and unbiased (ddof = 1) covariance, as in audioldm_eval's
    `calculate_fid` and pytorch-fid. Both sets may have different sizes; each needs >= 2
    rows. Singular covariances (n < d) are fine.

    Args:
        x: (n, d) embeddings (e.g. generated clips). y: (m, d) embeddings (reference).
    """
    xa = _as_2d(x, "x", min_rows=2)
    ya = _as_2d(y, "y", min_rows=2)
    _same_dims(xa, ya, "x", "y")
    if max(len(xa), len(ya)) < xa.shape[1]:
        # Fewer clips than dimensions (the usual case for 2048-d PANNs features): the
        # centred data is itself a covariance factor, sigma = A^T A / (n - 1), so the
        # d x d covariances and their factorisations are never formed. Same quantity.
        return _frechet_from_factors(xa.mean(0), ya.mean(0), _data_factor(xa), _data_factor(ya))
    return frechet_distance_from_stats(*gaussian_stats(xa), *gaussian_stats(ya))


def _data_factor(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean(0)).T / np.sqrt(len(x) - 1)


# --------------------------------------------------------------------------------------
# Inception score
# --------------------------------------------------------------------------------------


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax: x - max(x) - log(sum(exp(x - max(x)))) (as torch computes it)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax: exp(x - max(x)) / sum(exp(x - max(x)))."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def inception_score(logits: Any, splits: int = 10, seed: int | None = 2020) -> tuple[float, float]:
    """Inception score of classifier logits, exactly as audioldm_eval's `calculate_isc`.

    Procedure (audioldm_eval/metrics/isc.py, called with splits=10, samples_shuffle=True,
    rng_seed=2020):
      1. shuffle the rows with `np.random.RandomState(seed).permutation(N)` (the legacy
         Mersenne-Twister numpy RNG; `seed=None` disables shuffling);
      2. p = softmax(logits) and log p = log_softmax(logits) per row, in float64;
      3. for i in 0..splits-1 take rows [i*N//splits, (i+1)*N//splits), let
         q = mean of p over the chunk, and score_i = exp( mean over rows of
         sum_c p_c (log p_c - log q_c) ) = exp(mean_x KL(p(y|x) || p(y)));
      4. return (mean(score_i), std(score_i)) with the population std (ddof = 0, np.std).

    For PANNs, `logits` are the 527 pre-sigmoid AudioSet logits (fc_audioset output).

    Args:
        logits: (N, C) logits, N >= splits, C >= 2.
        splits: number of chunks (>= 1).
        seed: RandomState seed for the shuffle; None keeps the given order.

    Returns:
        (mean, std) of the per-split scores.
    """
    if not isinstance(splits, (int, np.integer)) or splits < 1:
        raise ValueError(f"splits must be a positive integer, got {splits!r}")
    arr = _as_2d(logits, "logits", min_rows=int(splits))
    n, c = arr.shape
    if c < 2:
        raise ValueError(f"logits need at least 2 classes, got {c}")
    if seed is not None:
        arr = arr[np.random.RandomState(seed).permutation(n), :]
    p = _softmax(arr)
    log_p = _log_softmax(arr)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        p_chunk, log_p_chunk = p[lo:hi], log_p[lo:hi]
        log_q = np.log(p_chunk.mean(axis=0, keepdims=True))
        kl = (p_chunk * (log_p_chunk - log_q)).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


# --------------------------------------------------------------------------------------
# KL divergence (paired)
# --------------------------------------------------------------------------------------

KLKind = Literal["softmax", "sigmoid"]


def kl_divergence_per_clip(p_logits: Any, q_logits: Any, *, kind: KLKind = "softmax", eps: float = 1e-6) -> np.ndarray:
    """Per-clip KL term of audioldm_eval's `calculate_kl`, one value per row.

    `p_logits` are the logits of the GENERATED clips (audioldm_eval's `features_1`,
    "prediction"), `q_logits` those of the paired REFERENCE clips (`features_2`,
    "pseudo target"); row i of one is paired with row i of the other. With
    P = act(p_logits), Q = act(q_logits) and act = softmax over classes (kind="softmax")
    or the element-wise logistic sigmoid (kind="sigmoid"), clip i gets

        kl_i = sum_c  Q_ic * ( log Q_ic - log(P_ic + eps) ),

    i.e. KL(reference_i || generated_i) with eps added to the generated probabilities
    inside the log only. This is `torch.nn.functional.kl_div((P + eps).log(), Q,
    reduction="sum")` restricted to row i (terms with Q_ic = 0 count as 0). Because eps is
    added inside the log only, the softmax value dips slightly below 0 when P is close to Q
    (e.g. -4e-4 on the demo, where random-weight backbones give near-uniform outputs). The sigmoid
    variant sums the positive-class terms only (no 1 - Q complement terms), exactly as
    audioldm_eval does; it is therefore not a sum of Bernoulli KLs and can be negative.

    Computed in float64; audioldm_eval evaluates the same formula on float32 tensors, so
    expect agreement to about 1e-6 relative, not bit for bit.
    """
    if kind not in ("softmax", "sigmoid"):
        raise ValueError(f"kind must be 'softmax' or 'sigmoid', got {kind!r}")
    if not (isinstance(eps, (int, float)) and eps >= 0.0):
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    p_arr = _as_2d(p_logits, "p_logits")
    q_arr = _as_2d(q_logits, "q_logits")
    _same_shape(p_arr, q_arr, "p_logits", "q_logits")
    if kind == "softmax":
        p_prob, q_prob = _softmax(p_arr), _softmax(q_arr)
    else:
        p_prob, q_prob = expit(p_arr), expit(q_arr)
    terms = xlogy(q_prob, q_prob) - q_prob * np.log(p_prob + eps)
    return terms.sum(axis=1)


def kl_divergence(p_logits: Any, q_logits: Any, *, kind: KLKind = "softmax", eps: float = 1e-6) -> float:
    """Paired KL divergence, audioldm_eval's `kullback_leibler_divergence_{softmax,sigmoid}`.

    KL = (1 / N) * sum_i kl_i with kl_i from `kl_divergence_per_clip` (audioldm_eval sums
    all terms with reduction="sum" and divides by N, the same number). `p_logits` =
    generated clips, `q_logits` = paired reference clips (same order, same shape).
    """
    return float(kl_divergence_per_clip(p_logits, q_logits, kind=kind, eps=eps).mean())


def kl_divergence_of_probabilities(p_gen: Any, p_ref: Any, *, eps: float = 1e-6) -> np.ndarray:
    """Per-clip KL of stable-audio-metrics' `passt_kld`, one value per row.

    `p_gen` / `p_ref` are class probabilities (rows sum to 1: the softmax of the window-mean
    logits). stable-audio-metrics evaluates `F.kl_div((p_ref + eps).log(), p_gen,
    reduction="sum")`, i.e. per clip

        kl_i = sum_c  Pgen_ic * ( log Pgen_ic - log(Pref_ic + eps) ),

    KL(generated || reference) with eps on the reference inside the log: the opposite
    direction to audioldm_eval's `calculate_kl` (`kl_divergence_per_clip`). Terms with
    Pgen_ic = 0 count as 0.
    """
    if not (isinstance(eps, (int, float)) and eps >= 0.0):
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    p = _as_2d(p_gen, "p_gen")
    q = _as_2d(p_ref, "p_ref")
    _same_shape(p, q, "p_gen", "p_ref")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("probabilities must be non-negative")
    return (xlogy(p, p) - p * np.log(q + eps)).sum(axis=1)


# --------------------------------------------------------------------------------------
# CLAP score
# --------------------------------------------------------------------------------------


def _l2_normalise(a: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    if np.any(norms == 0.0):
        bad = int(np.flatnonzero(norms[:, 0] == 0.0)[0])
        raise ValueError(f"{name} row {bad} has zero norm; its cosine similarity is undefined")
    return a / norms


def clap_score_per_pair(text_emb: Any, audio_emb: Any) -> np.ndarray:
    """Cosine similarity of each (text_i, audio_i) pair: <t_i/||t_i||, a_i/||a_i||>.

    Args:
        text_emb: (N, d) text embeddings. audio_emb: (N, d) audio embeddings, row i of each
            belonging to the same prompt.

    Returns:
        (N,) cosines in [-1, 1].
    """
    t = _as_2d(text_emb, "text_emb")
    a = _as_2d(audio_emb, "audio_emb")
    _same_shape(t, a, "text_emb", "audio_emb")
    cos = np.sum(_l2_normalise(t, "text_emb") * _l2_normalise(a, "audio_emb"), axis=1)
    return np.clip(cos, -1.0, 1.0)


def clap_score(text_emb: Any, audio_emb: Any) -> float:
    """CLAP score: mean over pairs of cosine(text_i, audio_i) (no rescaling, no x100)."""
    return float(clap_score_per_pair(text_emb, audio_emb).mean())


# --------------------------------------------------------------------------------------
# Kernel distance (KAD / KID)
# --------------------------------------------------------------------------------------


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ||a_i - b_j||^2, clipped at 0 against round-off."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0)


def _median_pairwise_distance(z: np.ndarray) -> float:
    """Median of ||z_i - z_j|| over all unordered pairs i < j (exact; O(n^2) memory)."""
    from scipy.spatial.distance import pdist

    return float(np.median(pdist(z, metric="euclidean")))


def _kernel_sum(
    a: np.ndarray, b: np.ndarray, kfn: Callable[[np.ndarray, np.ndarray], np.ndarray], exclude_diagonal: bool
) -> float:
    """sum_{i,j} k(a_i, b_j), optionally without the i == j terms (a is b), in row blocks."""
    total = 0.0
    for start in range(0, a.shape[0], _KERNEL_BLOCK_ROWS):
        block = kfn(a[start : start + _KERNEL_BLOCK_ROWS], b)
        if exclude_diagonal:
            rows = np.arange(block.shape[0])
            block[rows, start + rows] = 0.0
        total += float(block.sum())
    return total


def _resolve_bandwidth(bandwidth: Any, x: np.ndarray, y: np.ndarray) -> float:
    if isinstance(bandwidth, str):
        if bandwidth == "median":
            sigma = _median_pairwise_distance(np.concatenate([x, y], axis=0))
        elif bandwidth == "median_ref":
            sigma = _median_pairwise_distance(y)
        else:
            raise ValueError(f"bandwidth must be 'median', 'median_ref' or a positive float, got {bandwidth!r}")
    else:
        sigma = float(bandwidth)
    if not (np.isfinite(sigma) and sigma > 0.0):
        raise ValueError(
            f"RBF bandwidth must be a positive finite number, got {sigma!r} "
            "(the median pairwise distance is 0 when most points coincide)"
        )
    return sigma


def kernel_distance(
    x: Any,
    y: Any,
    *,
    kernel: Literal["rbf", "poly"] = "rbf",
    bandwidth: float | Literal["median", "median_ref"] = "median",
) -> float:
    """Unbiased squared maximum mean discrepancy (KAD with kernel="rbf", KID with "poly").

    MMD^2_u = sum_{i != j} k(x_i, x_j) / (n (n - 1))
            + sum_{i != j} k(y_i, y_j) / (m (m - 1))
            - 2 sum_{i, j} k(x_i, y_j) / (n m),
    the U-statistic of Gretton et al. (2012), diagonal terms excluded. It is an unbiased
    estimator of MMD^2, so for identical or same-distribution sets it is ~0 and can be
    slightly negative: the value is reported as is, never clamped. No scale factor is
    applied (kadtk reports 100 x this value).

    Kernels:
      * "rbf": k(a, b) = exp(-||a - b||^2 / (2 sigma^2)). bandwidth="median" (default):
        sigma = median Euclidean distance over all distinct pairs of the pooled set
        [x; y] (the median heuristic; exact, O((n + m)^2) memory); "median_ref": median over pairs of y only (kadtk's
        choice, y = reference set); or a positive float sigma.
      * "poly": k(a, b) = (a . b / d + 1)^3, the cubic kernel of KID (gamma = 1/d,
        coef0 = 1, degree 3, as audioldm_eval's `polynomial_kernel`). For n == m this
        equals audioldm_eval's `polynomial_mmd` on one subset; audioldm_eval's KID
        additionally averages over random subsets, which is not done here. `bandwidth`
        must be left at its default for "poly".

    Args:
        x: (n, d) embeddings, n >= 2. y: (m, d) embeddings, m >= 2.
    """
    xa = _as_2d(x, "x", min_rows=2)
    ya = _as_2d(y, "y", min_rows=2)
    _same_dims(xa, ya, "x", "y")
    n, m, d = xa.shape[0], ya.shape[0], xa.shape[1]
    if kernel == "rbf":
        sigma = _resolve_bandwidth(bandwidth, xa, ya)
        gamma = 1.0 / (2.0 * sigma * sigma)

        def kfn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.exp(-gamma * _sq_dists(a, b))

    elif kernel == "poly":
        if not (isinstance(bandwidth, str) and bandwidth == "median"):
            raise ValueError("bandwidth applies to kernel='rbf' only; leave it unset for 'poly'")

        def kfn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return (a @ b.T / d + 1.0) ** 3

    else:
        raise ValueError(f"kernel must be 'rbf' or 'poly', got {kernel!r}")
    k_xx = _kernel_sum(xa, xa, kfn, exclude_diagonal=True) / (n * (n - 1))
    k_yy = _kernel_sum(ya, ya, kfn, exclude_diagonal=True) / (m * (m - 1))
    k_xy = _kernel_sum(xa, ya, kfn, exclude_diagonal=False) / (n * m)
    return float(k_xx + k_yy - 2.0 * k_xy)


# --------------------------------------------------------------------------------------
# Bootstrap confidence intervals
# --------------------------------------------------------------------------------------


def bootstrap_ci(
    statistic: Callable[..., float],
    *arrays: Any,
    n_resamples: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
    paired: bool = False,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of `statistic(*arrays)`.

    Each of `n_resamples` replicates draws rows with replacement, n_k out of n_k for array
    k, and evaluates `statistic` on the resampled arrays. paired=False: every array is
    resampled independently (two-sample statistics such as FD, KAD); paired=True: one
    index vector is drawn and applied to all arrays (row i of each array stays together:
    KL, CLAP), which requires equal lengths. Draws use `np.random.default_rng(seed)`, in
    array order, so the result is deterministic for a seed. The interval is
    (q_{(1-c)/2}, q_{(1+c)/2}) of the replicate values (np.percentile, linear
    interpolation), c = confidence.

    Caveat: a percentile bootstrap inherits the statistic's small-sample bias; for FD the
    resampled sets contain duplicates, so replicates are biased upward and the interval
    can lie above the point estimate when n is not much larger than d.

    Returns:
        (low, high).
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array to resample")
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 2:
        raise ValueError(f"n_resamples must be an integer >= 2, got {n_resamples!r}")
    if not (0.0 < float(confidence) < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    arrs = [np.asarray(_to_numpy(a)) for a in arrays]
    for k, a in enumerate(arrs):
        if a.ndim < 1 or a.shape[0] < 1:
            raise ValueError(f"array {k} must have at least one row, got shape {a.shape}")
    lengths = [a.shape[0] for a in arrs]
    if paired and len(set(lengths)) != 1:
        raise ValueError(f"paired=True needs arrays of equal length, got {lengths}")
    rng = np.random.default_rng(seed)
    values = np.empty(int(n_resamples), dtype=np.float64)
    for r in range(int(n_resamples)):
        if paired:
            idx = rng.integers(0, lengths[0], size=lengths[0])
            sample = [a[idx] for a in arrs]
        else:
            sample = [a[rng.integers(0, len_k, size=len_k)] for a, len_k in zip(arrs, lengths)]
        values[r] = float(statistic(*sample))
    alpha = (1.0 - float(confidence)) / 2.0
    low, high = np.percentile(values, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(low), float(high)


def bootstrap_frechet_ci(
    x: Any, y: Any, *, n_resamples: int = 200, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of `frechet_distance(x, y)`, rows of x and y resampled
    independently (see `bootstrap_ci`, including its caveat on FD's upward bias).
    Cost: n_resamples covariance computations and FD evaluations (about 1-2 s each at
    d = 2048 on one core)."""
    xa = _as_2d(x, "x", min_rows=2)
    ya = _as_2d(y, "y", min_rows=2)
    _same_dims(xa, ya, "x", "y")
    return bootstrap_ci(frechet_distance, xa, ya, n_resamples=n_resamples, confidence=confidence, seed=seed)


# --------------------------------------------------------------------------------------
# FD-infinity (fadtk score_inf)
# --------------------------------------------------------------------------------------


def fit_inverse_n(ns: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """Least-squares line value = intercept + slope / n.

    Returns (intercept, slope, r2) with r2 = 1 - SS_res / SS_tot of the fit (as fadtk's
    `score_inf`; r2 is 1.0 when all values are equal and fitted exactly). Needs at least
    two distinct n.
    """
    n_arr = np.asarray(ns, dtype=np.float64)
    v_arr = np.asarray(values, dtype=np.float64)
    if n_arr.ndim != 1 or n_arr.shape != v_arr.shape:
        raise ValueError(f"ns and values must be 1-D of equal length, got {n_arr.shape}, {v_arr.shape}")
    if np.unique(n_arr).size < 2:
        raise ValueError("fit_inverse_n needs at least two distinct sample sizes")
    if np.any(n_arr <= 0):
        raise ValueError("sample sizes must be positive")
    inv = 1.0 / n_arr
    slope, intercept = np.polyfit(inv, v_arr, 1)
    resid = v_arr - (slope * inv + intercept)
    ss_tot = float(np.sum((v_arr - v_arr.mean()) ** 2))
    ss_res = float(np.sum(resid**2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0.0 else 1.0
    return float(intercept), float(slope), float(r2)


def frechet_distance_infinity(
    x: Any,
    y: Any,
    *,
    min_n: int | None = None,
    num_points: int = 15,
    seed: int = 0,
) -> tuple[float, float, float]:
    """FD-infinity: FD extrapolated to an infinite evaluation set (fadtk's `score_inf`).

    FD is biased upward by roughly b / n for n evaluated samples. Following fadtk: take
    the sizes n_i = int(linspace(min_n, N, num_points)) (N = rows of x), draw n_i rows of x
    with replacement (`np.random.default_rng(seed).integers`), compute FD_i against the
    full statistics of y, and fit FD_i = a + b / n_i by least squares. a is FD-infinity.

    Args:
        x: (N, d) evaluated embeddings (the set that is subsampled).
        y: (m, d) reference embeddings (always used whole), m >= 2.
        min_n: smallest subset size; default min(500, N // 2) (fadtk uses 500), at least 2.
        num_points: number of sizes (fadtk's `steps`, default 25 there), >= 2.
        seed: seed of the subsampling RNG.

    Returns:
        (fd_inf, slope, r2): intercept a, slope b and the fit's coefficient of
        determination.
    """
    xa = _as_2d(x, "x", min_rows=3)
    ya = _as_2d(y, "y", min_rows=2)
    _same_dims(xa, ya, "x", "y")
    n_total = xa.shape[0]
    lo = min(500, n_total // 2) if min_n is None else int(min_n)
    if lo < 2 or lo >= n_total:
        raise ValueError(f"min_n must be in [2, {n_total - 1}] for {n_total} rows, got {lo}")
    if not isinstance(num_points, (int, np.integer)) or num_points < 2:
        raise ValueError(f"num_points must be an integer >= 2, got {num_points!r}")
    ns = [int(v) for v in np.linspace(lo, n_total, int(num_points))]
    mu_y, sigma_y = gaussian_stats(ya)
    rng = np.random.default_rng(seed)
    values = []
    for n_i in ns:
        sub = xa[rng.integers(0, n_total, size=n_i)]
        values.append(frechet_distance_from_stats(*gaussian_stats(sub), mu_y, sigma_y))
    return fit_inverse_n(ns, values)
