"""How sure is an interaction: bootstrap refits over the model calls already made.

An estimator's result depends on which masks it happened to query (and, with a
noisy model, on the noise of each answer). Resampling the queried
``(mask, value)`` pairs with replacement and refitting the estimator's chosen
model on each resample shows how much the coefficients move: no extra model
call is made. Each estimator says what "its chosen model" is (ProxySPEX: a
proxy of the chosen depth, learning rate and number of trees, then the chosen
refit; SPEX: the chosen refit of the decoded support), and this module runs the
resamples and reads intervals off them.

Each interval is ``estimate ± z · d``, with ``d`` the root-mean-square
deviation of the refits *from the estimate* (a term a resample does not
select counts as 0 there): the spread of the refits and their shift from the
estimate both widen it. On the tuning games of
``benchmarks/bench_uncertainty.py`` this form covered 87-96 % of the found
planted coefficients (by group) and flagged every reported true zero as not
significant; the usual normal (standard deviation), percentile and basic
bootstrap intervals of the same resamples covered 72-95 %, and only the
percentile ones flagged the zeros as well (docs/design.md, "Uncertainty").
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.stats import norm

__all__ = [
    "DEFAULT_RESAMPLES",
    "Refit",
    "bootstrap",
    "coverage_text",
    "deviations",
    "intervals",
    "resample_seed",
]

#: Bootstrap resamples drawn when ``uncertainty=True`` and none are asked for.
DEFAULT_RESAMPLES = 30


def coverage_text(level: float) -> str:
    """An interval's coverage as a percentage, never rounded to 0 % or 100 %.

    Examples:
        >>> coverage_text(0.95), coverage_text(0.999), coverage_text(0.004)
        ('95%', '99.9%', '0.4%')
    """
    return f"{100 * level:.4g}%"


#: Refits the estimator's chosen model on the sample rows ``indices`` (with
#: repeats) and returns its Fourier terms ``(padded rows, coefficients)``.
Refit = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def resample_seed(rng: np.random.Generator) -> int:
    """One seed for every resample of a result, drawn after the fit.

    Drawing it after the point estimate is computed leaves the estimate (and
    every mask) the same whether uncertainty is on or off.
    """
    return int(rng.integers(2**63 - 1))


def bootstrap(
    refit: Refit,
    n_samples: int,
    n_resamples: int,
    seed: int,
    *,
    n_workers: int = 1,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Refit on ``n_resamples`` bootstrap resamples of ``n_samples`` samples.

    The resamples are drawn up front from ``seed``, so the result does not
    depend on ``n_workers`` (threads: the refits release the GIL in LightGBM
    and BLAS).

    Returns:
        One ``(rows, coefficients)`` per resample, in order.

    Examples:
        >>> import numpy as np
        >>> y = np.array([1.0, 2.0, 3.0, 4.0])
        >>> means = bootstrap(lambda i: (np.zeros((1, 0), np.int64), np.array([y[i].mean()])),
        ...                   n_samples=4, n_resamples=400, seed=0)
        >>> sd = float(np.std([c[0] for _, c in means]))  # of a mean of 4: 1.118 / 2 = 0.56
        >>> bool(abs(sd - 0.56) < 0.06)
        True
    """
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n_samples, n_samples) for _ in range(n_resamples)]
    if n_workers <= 1 or n_resamples <= 1:
        return [refit(np.sort(draw)) for draw in draws]
    with ThreadPoolExecutor(min(n_workers, n_resamples)) as pool:
        return list(pool.map(refit, (np.sort(draw) for draw in draws)))


def deviations(estimates: np.ndarray, replicates: np.ndarray) -> np.ndarray:
    """Root-mean-square deviation of each column of ``replicates`` from its estimate.

    Examples:
        >>> float(deviations(np.array([1.0]), np.array([[0.0], [2.0]]))[0])
        1.0
    """
    difference = replicates - estimates
    # Divided by each column's largest deviation first, so the squares neither
    # overflow (outputs near 1e308) nor underflow to zero (near 1e-300).
    largest = np.max(np.abs(difference), axis=0, initial=0.0)
    unit = np.where(largest > 0.0, largest, 1.0)
    return unit * np.sqrt(np.mean((difference / unit) ** 2, axis=0))


def intervals(
    estimates: np.ndarray, replicates: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """``estimate ± z · d`` per column of ``replicates`` (resamples × values).

    ``d`` is :func:`deviations`; ``z`` the normal quantile of ``level``.

    Examples:
        >>> low, high = intervals(np.array([1.0]), np.array([[0.0], [2.0]]), 0.95)
        >>> round(float(low[0]), 2), round(float(high[0]), 2)
        (-0.96, 2.96)
    """
    half = norm.ppf(0.5 + level / 2) * deviations(estimates, replicates)
    return estimates - half, estimates + half
