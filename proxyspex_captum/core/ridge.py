"""Ridge regression with the penalty chosen by generalised cross-validation.

Both estimators refit a support of Fourier features on many more samples than
features. Working on the ``p × p`` Gram matrix (one eigendecomposition serves
every penalty) costs ``O(N p² + p³)``, several times less than scikit-learn's
``RidgeCV``, which decomposes the ``N × p`` design itself.

Ordinary least squares (``α = 0``) is a candidate whenever the design has full
column rank: on a noiseless sparse function whose support was found exactly,
any penalty leaves shrinkage artefacts (a recovered ``4·x₃x₇x₉`` came back
with ``6e-9`` pair terms), and which small penalty GCV preferred depended on
the BLAS kernel. The residual sum of squares of each candidate is computed as
``RSS_OLS + Σ_i α² z_i² / (λ_i (λ_i + α)²)`` with ``RSS_OLS`` taken from the
explicit residual: the textbook ``yᵀy − 2 zᵀ(Λ+α)⁻¹z + …`` form cancels
catastrophically at the noise floor (about ``1e-16 · yᵀy``), where it cannot
tell an exact fit from a slightly shrunk one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RidgeFit", "ridge_gcv", "ridge_gcv_nested"]

DEFAULT_ALPHAS = np.logspace(-6, 4, 21)
# Eigenvalues of the centred Gram matrix below this share of the largest are
# treated as zero (the design is rank-deficient there); OLS is a candidate only
# when none is, i.e. when the condition number stays below 1e10.
_RANK_TOL = 1e-10


@dataclass(frozen=True)
class RidgeFit:
    """A fitted ridge model ``y ≈ intercept + X @ coef``."""

    coef: np.ndarray
    intercept: float
    alpha: float  # 0.0: ordinary least squares
    gcv: float  # generalised cross-validation error (mean squared)


def ridge_gcv(x: np.ndarray, y: np.ndarray, alphas: np.ndarray = DEFAULT_ALPHAS) -> RidgeFit:
    """Fit ``min ||y − b − X w||² + α||w||²`` (unpenalised intercept ``b``) for the best ``α``.

    ``α`` minimises the GCV error ``N · RSS(α) / (N − df(α))²``, the standard
    rotation-invariant approximation of leave-one-out error, over ``alphas``
    and, when ``X`` has full column rank, ``α = 0`` (no shrinkage).

    Args:
        x: ``(N, p)`` design (``p`` may be 0).
        y: ``(N,)`` targets.
        alphas: Candidate penalties (positive).

    Returns:
        The fit at the best penalty.

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = rng.choice([-1.0, 1.0], size=(200, 3))
        >>> fit = ridge_gcv(x, 2.0 + x @ np.array([1.0, 0.0, -3.0]))  # noiseless
        >>> fit.alpha, [round(float(c), 9) + 0.0 for c in fit.coef], round(fit.intercept, 9)
        (0.0, [1.0, 0.0, -3.0], 2.0)
    """
    return ridge_gcv_nested(x, y, [np.shape(x)[1]], alphas)[0]


def ridge_gcv_nested(
    x: np.ndarray, y: np.ndarray, sizes: Sequence[int], alphas: np.ndarray = DEFAULT_ALPHAS
) -> list[RidgeFit]:
    """:func:`ridge_gcv` on each column prefix ``x[:, :k]`` for ``k`` in ``sizes``.

    The prefixes share one centred Gram matrix (its leading blocks), computed
    once for the widest: refitting a ranked support at several sizes costs one
    ``N p²`` product instead of one per size. A size given twice is fitted once,
    and both entries are the same (immutable) :class:`RidgeFit`; do not modify
    its arrays in place.

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = rng.choice([-1.0, 1.0], size=(200, 4))
        >>> fits = ridge_gcv_nested(x, x @ np.array([3.0, -1.0, 0.0, 0.0]), [1, 2, 4])
        >>> [len(f.coef) for f in fits], [round(float(c), 6) + 0.0 for c in fits[1].coef]
        ([1, 2, 4], [3.0, -1.0])
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(y)
    y_mean = float(y.mean())
    yc = y - y_mean
    x_mean = x.mean(axis=0) if n else np.zeros(x.shape[1])
    xc = x - x_mean
    primal = [k for k in sizes if 0 < k < n]
    widest = max(primal, default=0)
    gram = xc[:, :widest].T @ xc[:, :widest]
    xty = xc[:, :widest].T @ yc
    # Each distinct size once: capped candidate sizes often coincide (K = 200 and
    # K = 400 both keep 200 terms of a 400-row fold), and a fit is an eigendecomposition.
    fits: dict[int, RidgeFit] = {}
    for k in dict.fromkeys(sizes):
        if k == 0:
            fits[k] = RidgeFit(np.zeros(0), y_mean, 0.0, float(yc @ yc) / max(n - 1, 1))
        elif k >= n:  # more features than samples: work on the n × n kernel instead
            fits[k] = _ridge_gcv_dual(xc[:, :k], yc, x_mean[:k], y_mean, alphas)
        else:
            fits[k] = _ridge_gcv_primal(
                xc[:, :k], yc, gram[:k, :k], xty[:k], x_mean[:k], y_mean, alphas
            )
    return [fits[k] for k in sizes]


def _ridge_gcv_primal(
    xc: np.ndarray,
    yc: np.ndarray,
    gram: np.ndarray,
    xty: np.ndarray,
    x_mean: np.ndarray,
    y_mean: float,
    alphas: np.ndarray,
) -> RidgeFit:
    """:func:`ridge_gcv` for centred columns, from their Gram matrix ``xcᵀxc`` and ``xcᵀyc``."""
    n = len(yc)
    eigval, eigvec = np.linalg.eigh(gram)
    eigval = np.clip(eigval, 0.0, None)
    z = eigvec.T @ xty
    informative = eigval > _RANK_TOL * eigval.max(initial=0.0)
    lam, zi = eigval[informative], z[informative]
    # Least squares on the informative directions, and its residual computed explicitly.
    w_ols = eigvec[:, informative] @ (zi / lam)
    residual = yc - xc @ w_ols
    rss_ols = float(residual @ residual)

    candidates = [float(a) for a in np.asarray(alphas, dtype=float)]
    if informative.all():
        candidates.insert(0, 0.0)
    best: tuple[float, float] | None = None
    for alpha in candidates:
        rss = rss_ols + float(np.sum(alpha**2 * zi**2 / (lam * (lam + alpha) ** 2)))
        df = float(np.sum(lam / (lam + alpha))) + 1.0  # + the intercept
        gcv = n * rss / max(n - df, 1e-12) ** 2
        if best is None or gcv < best[0]:
            best = (gcv, alpha)
    gcv, alpha = best  # type: ignore[misc]
    coef = w_ols if alpha == 0.0 else eigvec[:, informative] @ (zi / (lam + alpha))
    return RidgeFit(coef, y_mean - float(x_mean @ coef), alpha, gcv)


def _ridge_gcv_dual(
    xc: np.ndarray, yc: np.ndarray, x_mean: np.ndarray, y_mean: float, alphas: np.ndarray
) -> RidgeFit:
    """:func:`ridge_gcv` for ``p >= N`` centred columns, through the ``N × N`` kernel.

    The fit interpolates at ``α = 0`` here, so only positive penalties are
    candidates, and each residual is computed explicitly (no cancellation).
    """
    n = len(yc)
    eigval, eigvec = np.linalg.eigh(xc @ xc.T)
    eigval = np.clip(eigval, 0.0, None)
    u_y = eigvec.T @ yc
    best: tuple[float, float] | None = None
    for alpha in (float(a) for a in np.asarray(alphas, dtype=float)):
        shrink = alpha / (eigval + alpha)  # residual share of each kernel direction
        rss = float(np.sum((shrink * u_y) ** 2))
        df = float(np.sum(1.0 - shrink)) + 1.0  # + the intercept
        gcv = n * rss / max(n - df, 1e-12) ** 2
        if best is None or gcv < best[0]:
            best = (gcv, alpha)
    gcv, alpha = best  # type: ignore[misc]
    coef = xc.T @ (eigvec @ (u_y / (eigval + alpha)))
    return RidgeFit(coef, y_mean - float(x_mean @ coef), alpha, gcv)
