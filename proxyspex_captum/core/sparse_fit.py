"""Sparse linear fits over Fourier features, and their cross-validated errors.

Both estimators end with a linear model over a few Fourier features
``(−1)^{|S ∩ m|}`` (or, for one ProxySPEX candidate, Möbius features
``1[S ⊆ m]`` converted back to Fourier): which features, and how strongly to shrink them, is
chosen by cross-validated error on the calls already made (no extra model
calls). This module holds the pieces shared by those choices:

- :func:`lasso_alphas` / :func:`lasso_path_sse` / :func:`lasso_fit`: the
  lasso along a log grid of penalties relative to the largest useful one, so
  a step of the path means the same relative penalty in every fold;
- :func:`ridge_sse` / :func:`ridge_prefix_sse`: a ridge fit (penalty by GCV) scored
  on held-out rows, of one design or of its column prefixes;
  :func:`lasso_path_residuals` and :func:`ridge_prefix_residuals` also return
  the held-out residuals those errors sum;
- :func:`screen`: the columns most correlated with the target (sure
  independence screening), which keeps a lasso over ``n`` main effects cheap
  when ``n`` is large;
- :class:`CVErrors`: the held-out squared errors of every candidate, summed
  over folds, and the best one; with residuals kept, the error of the mean
  of several candidates on the same folds (:meth:`CVErrors.add_mean`);
- :func:`score_linear` / :func:`fit_linear`: the first-order candidates
  (``"linear"``: ridge over every main effect; ``"linear-lasso"``: lasso over
  the screened ones) that both estimators compare their interactions against,
  so that interactions are kept only when they pay.

Examples:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.choice([-1.0, 1.0], size=(200, 50))
    >>> y = 3.0 * x[:, 4] - 2.0 * x[:, 7] + 0.1 * rng.normal(size=200)
    >>> alphas = lasso_alphas(x, y)
    >>> errors = CVErrors()
    >>> for train, test in fold_indices(200, 5, rng):
    ...     sse = lasso_path_sse(x[train], y[train], x[test], y[test], alphas)
    ...     errors.add_path("lasso", sse)
    >>> name, step = errors.best()
    >>> coef, intercept = lasso_fit(x, y, alphas[step[1]])
    >>> [(int(i), round(float(coef[i]), 1)) for i in np.flatnonzero(np.abs(coef) > 0.5)]
    [(4, 3.0), (7, -2.0)]
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from sklearn import config_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import lasso_path
from threadpoolctl import ThreadpoolController

from .checks import check_int
from .ridge import RidgeFit, ridge_gcv, ridge_gcv_nested

__all__ = [
    "LINEAR_CANDIDATES",
    "PATH_PATIENCE",
    "STOP_RATIO",
    "CVErrors",
    "candidate_name",
    "clearly_better",
    "fit_linear",
    "fitting",
    "fold_indices",
    "lasso_alphas",
    "lasso_fit",
    "lasso_path_residuals",
    "lasso_path_sse",
    "relaxed",
    "ridge_prefix_residuals",
    "ridge_prefix_sse",
    "ridge_sse",
    "score_linear",
    "screen",
    "tie_tolerance",
]

# The lasso's penalty grid: N_ALPHAS values from the smallest penalty that keeps
# every coefficient at zero down to ALPHA_RATIO of it, log-spaced. Each fit builds it
# on its own data, so a path step is a penalty relative to that fit's largest.
N_ALPHAS = 20
ALPHA_RATIO = 1e-4
# Coordinate descent stops here; the path is warm-started, so late penalties converge fast.
_MAX_ITER = 1000
_TOL = 1e-4
#: A lasso path scored with ``patience`` ends once its held-out error has stayed above
#: this multiple of its least for that many penalties (:func:`lasso_path_sse`).
STOP_RATIO = 1.1
#: The ``patience`` the estimators' cross-validated lasso paths use. Past their best,
#: paths run towards interpolation, where their late penalties cost most of the path
#: and are not chosen: report2's SOUM n = 32 at 500 calls, steps 13-19 about 60 % of
#: a Fourier pool path whose held-out error was least at steps 5-7; the first-order
#: lasso at n = 1,000 with 1,000 calls, 0.5-0.6 s a fold whole and 0.02-0.04 s ended
#: (least at steps 5-6 of 20, then 1.05-22x that, the late steps not converging).
PATH_PATIENCE = 3
# Such a path is fitted this many penalties at a time after its first patience + 1
# (one lasso_path call each), and its end checked at every penalty.
_STRETCH = 2
# Lassos over at most this many columns run on the Gram matrix (see _lasso_coefs).
_GRAM_MAX_COLUMNS = 2000
# The linear lasso sees the main effects most correlated with the output, this many
# per sample (screening half as many lost 0.05 R² on a 512-feature game at 250 calls).
_SCREEN_PER_SAMPLE = 1.0
#: The names of the first-order candidates.
LINEAR_CANDIDATES = ("linear", "linear-lasso")


def fold_indices(
    n_samples: int, n_folds: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` row indices of ``n_folds`` random folds of near-equal size."""
    fold_of = rng.permutation(n_samples) % n_folds
    for fold in range(n_folds):
        yield np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)


def lasso_alphas(
    x: np.ndarray, y: np.ndarray, n_alphas: int = N_ALPHAS, ratio: float = ALPHA_RATIO
) -> np.ndarray:
    """A decreasing log grid of lasso penalties for ``(x, y)`` (sklearn's scale).

    The largest, ``max |x_cᵀ y_c| / N``, is the smallest penalty at which every
    coefficient is zero; the grid spans ``ratio`` of it.
    """
    xc = x - x.mean(axis=0)
    top = float(np.max(np.abs(xc.T @ (y - y.mean())), initial=0.0)) / max(len(y), 1)
    top = max(top, 1e-300)
    return top * np.logspace(0.0, np.log10(ratio), n_alphas)


def _lasso_coefs(x: np.ndarray, y: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """``(p, len(alphas))`` lasso coefficients of the centred problem, warm-started."""
    return next(_lasso_stretches(x, y, alphas, len(alphas), len(alphas)))


def _lasso_stretches(
    x: np.ndarray, y: np.ndarray, alphas: np.ndarray, first: int, size: int
) -> Iterator[np.ndarray]:
    """The lasso path along ``alphas``: ``first`` penalties, then ``size`` at a time.

    Yields each stretch's ``(p, penalties)`` coefficients.

    Each stretch starts from the last one's coefficients, as the path itself
    warm-starts each penalty from the one before, so the stretches are the
    single path's coefficients, bit for bit (checked with stretches of 1 to 7
    penalties on designs of 40 to 2,100 columns); a caller can stop early.
    """
    # precompute=True: coordinate descent on the Gram matrix XᵀX, the same iterates
    # (predictions equal to 1e-12 of their spread) at a cost per sweep that grows with
    # the columns that move, not with the samples. sklearn's default uses it only with
    # more samples than columns; with as many or fewer (a 500-term pool seen by 200-500
    # training rows, the screened main effects, SPEX's refit at n = 1,000) it made
    # ProxySPEX's whole fit up to 1.5x faster (benchmarks/bench_lasso.py) and SPEX's
    # about 2x at n = 1,000 with 1,000 calls. The Gram product costs N·p² once, and
    # from about 2,000 columns it cancels the gain (one path at p = N = 2,000 and
    # 3,000: the same time either way), so wider designs keep sklearn's choice.
    # random_state: coordinate descent draws a seed from it even in cyclic order,
    # and by default that is numpy's global generator, which must stay untouched.
    # The dtypes scikit-learn's checks would give: float32 stays, anything else is
    # float64, and y takes X's (the Gram solver needs one dtype throughout).
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    # Centred straight into Fortran order (the C-ordered result of the transpose):
    # the same numbers as centring and then copying, in one pass instead of two.
    xc = np.subtract(x.T, x.mean(axis=0)[:, None], dtype=dtype, order="C").T
    yc = (y - y.mean()).astype(dtype, copy=False)
    gram_options: dict[str, Any] = {}  # wider designs: scikit-learn's own choice
    if x.shape[1] <= _GRAM_MAX_COLUMNS:
        # The Gram matrix and Xᵀy built here as scikit-learn builds them (the same
        # products of the same Fortran-ordered copy, so the same bits), which lets the
        # path skip its input checks: they re-validated the Gram matrix at every
        # penalty, 20 times a path, about a tenth of a small fit's lasso time.
        gram = np.empty((x.shape[1], x.shape[1]), dtype=xc.dtype, order="C")
        np.dot(xc.T, xc, out=gram)
        xy = np.empty(x.shape[1], dtype=dtype)
        np.dot(xc.T, yc, out=xy)
        gram_options = {"precompute": gram, "Xy": xy, "check_input": False}
    # One generator for the whole path, as one lasso_path call makes from its seed:
    # in cyclic order its draws are not used, and a seed would build a new one (about
    # 0.1 ms) at every stretch.
    random_state = np.random.RandomState(0)
    coef = None
    starts = [0, *range(first, len(alphas), size)] if first < len(alphas) else [0]
    for start, end in zip(starts, [*starts[1:], len(alphas)], strict=True):
        # Our own arguments, so scikit-learn's parameter validation (about 0.2 ms a
        # call) is skipped; the thread's setting comes back after the call.
        with config_context(skip_parameter_validation=True):
            _, coefs, _ = lasso_path(
                xc,
                yc,
                alphas=alphas[start:end],
                coef_init=coef,
                max_iter=_MAX_ITER,
                tol=_TOL,
                random_state=random_state,
                **gram_options,
            )
        # A copy: one penalty's column is contiguous, and the solver would update the
        # stretch already handed out in place, through coef_init.
        coef = coefs[:, -1].copy()
        yield coefs


@contextlib.contextmanager
def fitting() -> Iterator[None]:
    """What the estimators' fits run under: one BLAS thread, no lasso convergence warnings.

    One BLAS thread: the fits' matrices are small (at most a few thousand
    columns), where extra threads gain little and, on a busy machine, spin
    (47 eigendecompositions took 16 s with 2 threads under load, 0.4 s with one).
    A penalty near the end of a lasso path may stop at ``_MAX_ITER``: its fit is
    still scored on held-out rows, so an unconverged one simply loses, and its
    warning would only be noise. Enter this in the thread that starts the fit:
    ``warnings.catch_warnings`` is not thread-safe, so worker threads must not
    enter their own (they see the filter set here).
    """
    with _blas().limit(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@functools.lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    """The process's BLAS libraries, found once.

    ``threadpool_limits`` searches the loaded libraries on every call (5 ms
    under load, about 1 % of a small fit). The fits' BLAS is numpy's and
    scipy's, both loaded when this module imports scikit-learn, so a library
    loaded later (torch's own) is one the fits do not call.
    """
    return ThreadpoolController()


def lasso_path_sse(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    alphas: np.ndarray,
    *,
    patience: int | None = None,
) -> np.ndarray:
    """Held-out sum of squared errors of the lasso at each penalty in ``alphas``.

    ``patience``: end the path once its held-out error has stayed above
    ``STOP_RATIO`` times its least for this many penalties in a row. The
    penalties past that point are not fitted and the result is shorter:
    :class:`CVErrors` compares only the steps every fold reached. ``None``:
    the whole path.
    """
    return lasso_path_residuals(x_train, y_train, x_test, y_test, alphas, patience=patience)[0]


def lasso_path_residuals(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    alphas: np.ndarray,
    *,
    patience: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`lasso_path_sse` and the held-out residuals it sums.

    Returns:
        ``(sse, residuals)``: the error at each penalty fitted, and the
        ``(n_test, len(sse))`` predictions minus ``y_test``.
    """
    if patience is not None:
        patience = check_int("patience", patience, 1)
    if len(alphas) == 0:
        return np.zeros(0), np.zeros((len(y_test), 0))
    x_mean, y_mean = x_train.mean(axis=0), float(y_train.mean())
    # The rule cannot end a path before patience + 1 errors: that many come in one go.
    first, size = (len(alphas),) * 2 if patience is None else (patience + 1, _STRETCH)
    sse: list[float] = []
    residuals: list[np.ndarray] = []
    for coefs in _lasso_stretches(x_train, y_train, alphas, first, size):
        residual = (x_test - x_mean) @ coefs + y_mean - y_test[:, None]  # (n_test, stretch)
        for step, value in enumerate(np.sum(residual**2, axis=0)):
            sse.append(float(value))
            residuals.append(residual[:, step])
            # Checked at every penalty, so where the path ends does not depend on
            # the stretches' length (a stretch may fit one penalty too many).
            if patience is not None and _past_its_best(sse, patience):
                return np.asarray(sse), np.column_stack(residuals)
    return np.asarray(sse), np.column_stack(residuals)


def _past_its_best(sse: list[float], patience: int) -> bool:
    """Whether the last ``patience`` errors of a path all exceed ``STOP_RATIO`` x its least."""
    if len(sse) <= patience:
        return False
    bar = STOP_RATIO * min(sse)
    return all(value > bar for value in sse[-patience:])


def lasso_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """The lasso at one penalty: ``(coefficients, intercept)``."""
    # Walking the path down to alpha is faster and more stable than a cold start there.
    top = lasso_alphas(x, y, 2)[0]
    steps = max(2, int(np.ceil(np.log10(max(top / alpha, 1.0)) * N_ALPHAS / 4)) + 1)
    path = np.geomspace(max(top, alpha), alpha, steps)
    coef = _lasso_coefs(x, y, path)[:, -1]
    return coef, float(y.mean() - x.mean(axis=0) @ coef)


def relaxed(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """A ridge (GCV, least squares when it fits best) refit of the columns a lasso selected.

    The lasso shrinks every coefficient it keeps towards 0; refitting its
    selection without the L1 penalty removes most of that bias (the relaxed
    lasso; GCV may still choose a small ridge penalty).
    Returns ``(coefficients, intercept)``.
    """
    fit = ridge_gcv(x, y)
    return fit.coef, fit.intercept


def ridge_sse(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> tuple[float, RidgeFit]:
    """Held-out sum of squared errors of :func:`~.ridge.ridge_gcv` fitted on the training rows."""
    fit = ridge_gcv(x_train, y_train)
    residual = x_test @ fit.coef + fit.intercept - y_test
    return float(residual @ residual), fit


def ridge_prefix_sse(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    sizes: Sequence[int],
) -> list[float]:
    """:func:`ridge_sse` of each column prefix ``[:, :k]``, ``k`` in ``sizes``: one Gram matrix."""
    return ridge_prefix_residuals(x_train, y_train, x_test, y_test, sizes)[0]


def ridge_prefix_residuals(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    sizes: Sequence[int],
) -> tuple[list[float], list[np.ndarray]]:
    """:func:`ridge_prefix_sse` and the held-out residuals it sums, one array a size."""
    sse, residuals = [], []
    for k, fit in zip(sizes, ridge_gcv_nested(x_train, y_train, sizes), strict=True):
        residual = x_test[:, :k] @ fit.coef + fit.intercept - y_test
        sse.append(float(residual @ residual))
        residuals.append(residual)
    return sse, residuals


def screen(x: np.ndarray, y: np.ndarray, keep: int) -> np.ndarray:
    """Indices of the ``keep`` columns of ``x`` most correlated with ``y``, in column order.

    Sure independence screening (Fan & Lv, 2008): with many more main effects
    than samples, the lasso's solution lies among the most correlated columns,
    and fitting only those makes it several times cheaper.
    """
    if keep >= x.shape[1]:
        return np.arange(x.shape[1])
    scores = np.abs((x - x.mean(axis=0)).T @ (y - y.mean()))
    return np.sort(np.argsort(-scores, kind="stable")[:keep])


class CVErrors:
    """Held-out squared errors of candidate models, summed over folds.

    A candidate is any hashable key; a lasso path adds one candidate per penalty,
    ``(name, step)``. Candidates missing from some fold are not compared. A
    candidate's held-out residuals may be kept too, fold by fold, so that
    combinations of candidates can be scored on the same folds (:meth:`add_mean`).
    """

    def __init__(self) -> None:
        self.sse: dict[Hashable, float] = {}
        self._by_fold: dict[Hashable, list[float]] = {}  # how many folds saw each, too
        self._residuals: dict[Hashable, list[np.ndarray]] = {}

    def add(self, key: Hashable, sse: float, residual: np.ndarray | None = None) -> None:
        self.sse[key] = self.sse.get(key, 0.0) + float(sse)
        self._by_fold.setdefault(key, []).append(float(sse))
        if residual is not None:
            self._residuals.setdefault(key, []).append(residual)

    def add_path(
        self, name: Hashable, sse: np.ndarray, residuals: np.ndarray | None = None
    ) -> None:
        """One fold's errors of a path, ``(name, step)`` for each step; ``residuals``:
        its ``(n_test, steps)`` held-out residuals, when kept."""
        for step, value in enumerate(sse):
            self.add((name, step), value, None if residuals is None else residuals[:, step])

    def merge(self, other: CVErrors) -> None:
        """Add another set of folds' errors (in its order: keys first seen there come last)."""
        for key, sse in other.sse.items():
            self.sse[key] = self.sse.get(key, 0.0) + sse
            self._by_fold.setdefault(key, []).extend(other._by_fold[key])
        for key, residuals in other._residuals.items():
            self._residuals.setdefault(key, []).extend(residuals)

    def residuals(self, key: Hashable) -> list[np.ndarray]:
        """The candidate ``key``'s held-out residuals, fold by fold (none when not kept)."""
        return list(self._residuals.get(key, []))

    def add_mean(self, key: Hashable, parts: Sequence[Hashable]) -> None:
        """Score the mean of the candidates ``parts``' predictions as the new candidate ``key``.

        Its residual on each fold is the mean of theirs, so it is scored on the
        same held-out rows without fitting anything. Every part must have been
        scored, with its residuals kept, on the same folds in the same order
        (as every candidate of one cross-validation is).

        Raises:
            ValueError: ``key`` is already scored, or a part's residuals were
                not kept on every fold it was scored on, or the parts' folds
                differ in number or size.
        """
        if key in self.sse:
            raise ValueError(f"{key!r} is already scored; a mean is added once.")
        folds = []
        for part in parts:
            residuals = self._residuals.get(part, [])
            if len(residuals) != len(self._by_fold.get(part, ())) or not residuals:
                raise ValueError(f"the residuals of {part!r} were not kept on every fold")
            folds.append(residuals)
        sizes = {tuple(len(r) for r in residuals) for residuals in folds}
        if len(sizes) > 1:
            raise ValueError(f"{list(parts)} were not scored on the same folds")
        for fold in zip(*folds, strict=True):
            residual = np.mean(fold, axis=0)
            self.add(key, float(residual @ residual), residual)

    def drop_residuals(self) -> None:
        """Forget the kept residuals (the errors stay): once the choice is made,
        only they would keep the held-out rows' arrays alive."""
        self._residuals.clear()

    def best(
        self, tolerance: float = 0.0, among: str | Iterable[Hashable] | None = None
    ) -> tuple[Hashable, Hashable]:
        """``(name, key)`` of the candidate with the least error over every fold seen.

        ``name`` is the key's first element for a path step, else the key itself.
        Errors within ``tolerance`` of the least count as ties, and ties go to the
        candidate added first: on a noiseless function several candidates reach
        errors near 1e-30, and rounding must not decide among them.
        ``among``: only candidates of these names compete (a ``KeyError`` if none was scored).
        """
        complete = self._complete()
        if among is not None:
            names = {among} if isinstance(among, str) else set(among)
            complete = [k for k in complete if candidate_name(k) in names]
            if not complete:
                wanted = sorted(names, key=str)
                raise KeyError(f"no candidate named {wanted} was scored on every fold")
        least = min(self.sse[k] for k in complete)
        key = next(k for k in complete if self.sse[k] <= least + tolerance)
        return candidate_name(key), key

    def by_fold(self, key: Hashable) -> np.ndarray:
        """The candidate ``key``'s held-out squared error on each fold, in the order added."""
        return np.asarray(self._by_fold[key])

    def least(self) -> float:
        """The least error of the candidates seen on every fold (``inf`` when none was scored)."""
        return min((self.sse[k] for k in self._complete()), default=np.inf)

    def _complete(self) -> list[Hashable]:
        most = max(map(len, self._by_fold.values()), default=0)
        return [k for k in self.sse if len(self._by_fold[k]) == most]


def candidate_name(key: Hashable) -> Hashable:
    """A candidate's name: a path step's first element, else the key itself.

    >>> candidate_name(("lasso", 7)), candidate_name("linear")
    ('lasso', 'linear')
    """
    return key[0] if isinstance(key, tuple) else key


def clearly_better(errors: CVErrors, key: Hashable, rival: Hashable) -> bool:
    """Whether candidate ``key`` beats ``rival`` by more than one standard error.

    The one-standard-error rule on paired folds: ``rival``'s excess error over
    ``key`` on each fold (the folds' own difficulty cancels), whose mean must be
    more than its standard error. With fewer than two folds nothing is clear.

    >>> errors = CVErrors()
    >>> for ridge, lasso in [(1.0, 1.2), (1.0, 0.9), (1.0, 1.1)]:
    ...     errors.add("ridge", ridge)
    ...     errors.add("lasso", lasso)
    >>> clearly_better(errors, "ridge", "lasso")  # ahead on 2 folds of 3: within noise
    False
    >>> errors.add("ridge", 1.0)
    >>> errors.add("lasso", 1.3)
    >>> clearly_better(errors, "ridge", "lasso")
    True
    """
    mine, theirs = errors.by_fold(key), errors.by_fold(rival)
    if len(mine) != len(theirs):
        raise ValueError(
            f"{key!r} was scored on {len(mine)} folds and {rival!r} on {len(theirs)}: "
            "only candidates scored on the same folds can be compared fold by fold."
        )
    excess = theirs - mine
    if len(excess) < 2:
        return False
    return bool(excess.mean() > excess.std(ddof=1) / np.sqrt(len(excess)))


def tie_tolerance(y: np.ndarray) -> float:
    """CV errors closer than this count as ties (see :meth:`CVErrors.best`).

    A billionth of the output's sum of squares: noiseless fits reach errors near
    1e-30, and rounding must not decide between them.
    """
    return 1e-9 * float(np.sum((y - y.mean()) ** 2))


def _screened(n_samples: int) -> int:
    return max(1, int(_SCREEN_PER_SAMPLE * n_samples))


def score_linear(
    errors: CVErrors, main: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray
) -> None:
    """Add the first-order candidates' held-out errors on one fold to ``errors``.

    ``main`` holds the ``±1`` main-effect features of every sample.
    """
    sse, _ = ridge_sse(main[train], y[train], main[test], y[test])
    errors.add("linear", sse)
    keep = screen(main[train], y[train], _screened(len(train)))
    x = main[:, keep]
    alphas = lasso_alphas(x[train], y[train])
    sse = lasso_path_sse(x[train], y[train], x[test], y[test], alphas, patience=PATH_PATIENCE)
    errors.add_path("linear-lasso", sse)


def fit_linear(
    key: Hashable, main: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Refit the first-order candidate ``key`` on every sample.

    Returns:
        ``(columns, coefficients, intercept)``: the main effects used and their
        coefficients on the ``±1`` features.
    """
    if key == "linear":
        fit = ridge_gcv(main, y)
        return np.arange(main.shape[1]), fit.coef, fit.intercept
    keep = screen(main, y, _screened(len(y)))
    x = main[:, keep]
    beta, intercept = lasso_fit(x, y, lasso_alphas(x, y)[key[1]])  # type: ignore[index]
    used = beta != 0
    return keep[used], beta[used], intercept
