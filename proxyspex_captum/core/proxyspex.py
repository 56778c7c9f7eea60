"""ProxySPEX: interactions read off a gradient-boosted tree proxy.

1. Query the model on uniformly random masks (the empty and full masks included).
2. Split the samples into ``n_folds`` folds. On each, fit a LightGBM proxy on
   the other folds with early stopping on the held-out one (the number of
   trees is chosen by validation); the tree depth and learning rate are chosen
   among a few candidates on the first ``screen_folds`` folds (2), and only the
   winner runs on the rest.
3. Read the exact Fourier transform off the trees (:mod:`.tree_fourier`).
4. Score, on the same held-out folds, every way of turning the proxy into a
   sparse model: the proxy as it is; a ridge refit of its ``K`` largest terms
   for several ``K``; a lasso over its largest terms, as Fourier parities and
   as Möbius unanimity terms ``1[S ⊆ m]``; and, without the proxy,
   a linear model (ridge, or lasso over the main effects most correlated with
   the output). The one with the least cross-validated error is refitted on
   every sample, on the averaged transform of the fold proxies; a ridge is
   kept over the best lasso only when it wins by more than one standard
   error (refitted on every sample, the lasso gains more than the ridge from
   the fifth that each fold's fit did not see), and then it is averaged with
   that lasso (``metadata["refit"]`` says ``"ridge+lasso"``). Interactions
   are kept only when they pay: with few calls per feature the linear model
   usually wins, as it does for LIME.

The cross-validated R² of the chosen model (``metadata["cv_r2"]``) costs no
extra model calls. When the budget covers all ``2**n`` masks the transform is
computed exactly instead (see :class:`.base.InteractionEstimator`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from typing import Any

import lightgbm as lgb
import numpy as np

from .base import InteractionEstimator, OutputFit, centre_and_scale, check_sample_values
from .boosting import binned_once, boost
from .checks import check_int, check_n_jobs, check_real, threads_for
from .ridge import ridge_gcv
from .sampling import each_from_the_same_draws, uniform_masks
from .sparse_fit import (
    LINEAR_CANDIDATES,
    N_ALPHAS,
    PATH_PATIENCE,
    CVErrors,
    candidate_name,
    clearly_better,
    fit_linear,
    fitting,
    fold_indices,
    lasso_alphas,
    lasso_fit,
    lasso_path_residuals,
    relaxed,
    ridge_prefix_residuals,
    score_linear,
    tie_tolerance,
)
from .subsets import (
    add_constant,
    aggregate,
    and_features,
    fourier_features,
    mobius_to_fourier,
    set_sizes,
    singletons,
    widen,
    with_intercept,
)
from .tree_fourier import tree_ensemble_fourier
from .uncertainty import DEFAULT_RESAMPLES
from .value_function import ValueFunction

__all__ = ["ProxySPEX"]

# Candidate sizes of a ridge refit of the proxy's largest terms; the energy cut is one too
# (any size up to half the training rows: it grows with the proxy). K = 800 was dropped
# (2026-12-07): from 2,000 calls its 800-column eigendecomposition was 83 of a fold's
# 150 ms of ridge refits, it was never chosen on the tuning set (102 runs, R² identical
# without it), and ProxySPEX's own time at 2,000-4,000 calls fell to a median 0.94
# (docs/design.md).
_SUPPORT_SIZES = (25, 50, 100, 200, 400)
# The ridge candidates' names (a refit of the K largest terms; the energy cut).
_RIDGES = ("ridge", "ridge-energy")
#: The candidate that averages a ridge with a lasso: ``(BLEND, ridge key, lasso key)``.
BLEND = "blend"
# The ridge stays alone when the mean's cross-validated error is more than this many
# times its own: the lasso is then far worse, not a near tie that its refit on every
# sample can reverse (where the mean was taken on the tuning set the ratio was 0.96-1.09;
# on a nearly noiseless sparse model, 4,700, and the lasso's shrinkage read 2 as 1.99).
_MEAN_ERROR_RATIO = 2.0
# The lasso over the proxy's terms sees this many of the largest.
_LASSO_POOL = 500
#: The bases a lasso over those terms can use -> its candidate's name: the Fourier
#: features (−1)^{|S ∩ m|}, or the Möbius ones 1[S ⊆ m], where a unanimity term is
#: one column instead of 2^|S| (shapiq's SOUM games: 10 of the 12 tuning cells with
#: at most 1,000 calls better by 0.009-0.117 R², none worse; hierarchical unchanged).
LASSO_BASES = {"fourier": "lasso", "mobius": "lasso-mobius"}
# Möbius columns are far from orthogonal (1[{0,1} ⊆ m] implies 1[{0} ⊆ m]), so
# coordinate descent converges slowly at small penalties, which with more columns
# than samples are never chosen: that lasso's path stops at 1 % of its largest
# penalty (1e-4 of it took up to 3x the whole fit's time, for the same choice).
_MOBIUS_ALPHA_RATIO = 1e-2
#: Tree depths the first folds choose among when ``max_depth`` is None (capped by max_order).
DEPTHS = (2, 3, 5)
# Folds on which every proxy configuration is scored before the best runs on the rest.
# One fold's held-out rows (a fifth of 250-1,000 calls) chose the depth by noise. On
# the 22 tuning cells with fewest calls per feature, two folds against one: +0.004 R²
# on average, better by up to 0.057 on 4 cells and worse on 1 (a noisy game, -0.036),
# for 14 % more time; all five folds: +0.001, 2 better and 3 worse, 53 % more time
# (the screen_folds columns of benchmarks/results/faithfulness_tuning.md).
SCREEN_FOLDS = 2
# Learning rates tried when none is given.
_LEARNING_RATES = (0.1,)
# A leaf at depth d adds 2**d Fourier terms, so reading the transform off the trees
# grows as 2**depth: depth 8 (256 terms a leaf) is the most accepted.
MAX_TREE_DEPTH = 8

_Terms = tuple[np.ndarray, np.ndarray]  # (padded rows, Fourier coefficients)


class ProxySPEX(InteractionEstimator):
    """Sparse interactions from a LightGBM proxy of the value function.

    Every choice below that is left at ``None`` is made from the calls already
    paid for, by cross-validation; ``metadata`` says what was chosen
    (``tree_depth``, ``learning_rate``, ``n_trees``, ``refit``, ``n_terms``) and
    how well the result predicts held-out calls (``cv_r2``).

    Args:
        max_order: Largest interaction order (bounds the proxy's tree depth).
        max_depth: Depth of the proxy's trees, at most ``max_order`` and 8,
            or several depths (at most 8, each capped by ``max_order``) to
            choose among on the first ``screen_folds`` folds; ``None``: the best of
            :data:`DEPTHS`, capped likewise. A tree
            of depth ``d`` carries interactions of order ``d`` at most, and
            reading its Fourier transform costs ``2**d`` terms per leaf.
        learning_rate: LightGBM learning rate, or several to choose among on
            the first ``screen_folds`` folds (with the depths); ``None``: 0.1.
        refit: How the proxy becomes the result: ``"auto"`` (default) picks
            the candidate with the least cross-validated error among the
            proxy itself, a ridge refit of its largest terms, a lasso over
            them (in each of ``lasso_bases``), and a linear model, except
            that a ridge must beat the best lasso by more than one standard
            error of their per-fold difference, and is then averaged with it
            (``metadata["refit"]``: e.g. ``"ridge+lasso"``);
            ``"ridge"``, ``"lasso"``, ``"linear"`` or ``"proxy"`` restrict
            the choice to that family.
        energy: The ridge refit also considers the fewest largest terms that
            carry this share of the proxy's non-constant Fourier energy.
        lasso_bases: The bases in which a lasso selects among the proxy's
            largest terms, each a candidate: ``"fourier"`` (parities) and
            ``"mobius"`` (unanimity terms ``1[S ⊆ m]``: sparser when the
            model is a sum of AND-like terms; the result is still stored as
            Fourier coefficients). ``metadata["refit"]`` says ``"lasso"`` or
            ``"lasso-mobius"`` when one wins.
        n_folds: Folds of the cross-validation (at least 2).
        screen_folds: Folds on which every candidate depth and learning rate
            is scored before only the best runs on the others (1 to
            ``n_folds``; ``n_folds``: full cross-validation of each).
        max_trees: Most boosting rounds; early stopping usually ends far sooner.
        min_child_samples: LightGBM's smallest leaf.
        early_stopping_rounds: Rounds without validation improvement before stopping.
        n_jobs: Jobs run at once (a fold's proxy, or one of its candidates'
            scoring), on threads (each LightGBM fit and the
            linear algebra stay single-threaded, so the result is the same
            for any ``n_jobs``). ``"auto"`` (default) or an int ``<= 0``: one
            per usable core; ``None`` or 1: one after the other. Threads, not
            LightGBM's OpenMP: OpenMP's waiting threads spin, which made small
            fits 5–7x slower on a busy machine (``benchmarks/bench_threads.py``).
        keep_probability: Probability that a mask keeps each feature. 0.5
            (default) treats every subset alike, as Shapley and Banzhaf values
            do; higher concentrates the model calls near the full input, where
            the surrogate then fits best: for pruning (keep 200 of 270 heads:
            about 0.75) or when removing half the features breaks the model.
        random_state: Seed or ``numpy.random.Generator``; the same seed gives
            the same masks and the same result.
        batch_size: Largest number of masks per model call.
        show_progress: Show a progress bar over the model calls.
        uncertainty: Refit the chosen proxy and refit on ``n_resamples``
            bootstrap resamples of the calls made (no model call; a few times
            the cost of one proxy each), so the result's
            :meth:`~proxyspex_captum.Interactions.intervals` and
            :meth:`~proxyspex_captum.Interactions.selection_frequency` say how
            sure each interaction is.
        n_resamples: Bootstrap resamples when ``uncertainty`` is on.

    Examples:
        >>> import numpy as np
        >>> import proxyspex_captum as psx
        >>> def model(masks):  # features 0 and 1 only matter together
        ...     return 2.0 * (masks[:, 0] & masks[:, 1]) + masks[:, 2]
        >>> inter = psx.ProxySPEX(max_order=2, random_state=0).explain(
        ...     model, n_features=30, budget=500
        ... )
        >>> [(s, round(v, 2)) for s, v in inter.top(2)]
        [((0, 1), 2.0), ((2,), 1.0)]
        >>> round(inter.metadata["cv_r2"], 2)
        1.0
    """

    name = "proxyspex"
    #: Fewest model calls accepted (or ``2**n`` if smaller: then every mask is queried).
    MIN_BUDGET = 100
    #: The values ``refit`` accepts.
    REFITS = ("auto", "proxy", "ridge", "lasso", "linear")

    def __init__(
        self,
        *,
        max_order: int = 4,
        max_depth: int | Sequence[int] | None = None,
        learning_rate: float | Sequence[float] | None = None,
        refit: str = "auto",
        energy: float = 0.95,
        lasso_bases: str | Sequence[str] = ("fourier", "mobius"),
        n_folds: int = 5,
        screen_folds: int = SCREEN_FOLDS,
        max_trees: int = 2000,
        min_child_samples: int = 5,
        early_stopping_rounds: int = 20,
        n_jobs: int | str | None = "auto",
        keep_probability: float = 0.5,
        random_state: int | np.random.Generator | None = None,
        batch_size: int | str | None = "auto",
        show_progress: bool = False,
        uncertainty: bool = True,
        n_resamples: int = DEFAULT_RESAMPLES,
    ) -> None:
        super().__init__(
            max_order=max_order,
            random_state=random_state,
            batch_size=batch_size,
            show_progress=show_progress,
            uncertainty=uncertainty,
            n_resamples=n_resamples,
        )
        deepest = min(self.max_order, MAX_TREE_DEPTH)
        self.max_depth = _one_or_several(
            "max_depth", max_depth, lambda name, v: check_int(name, v, 1, MAX_TREE_DEPTH)
        )
        if isinstance(self.max_depth, int):  # one depth must fit; candidates are capped
            check_int("max_depth", self.max_depth, 1, deepest)
        self.learning_rate = _one_or_several(
            "learning_rate",
            learning_rate,
            lambda name, v: check_real(name, v, 0.0, 1.0, low_open=True),
        )
        if refit not in self.REFITS:
            choices = ", ".join(map(repr, self.REFITS))
            raise ValueError(f"refit must be one of {choices}, got {refit!r}.")
        self.refit = refit
        self.energy = check_real("energy", energy, 0.0, 1.0, low_open=True)
        choices = ", ".join(map(repr, LASSO_BASES))
        try:
            bases = {lasso_bases} if isinstance(lasso_bases, str) else set(lasso_bases)
        except TypeError:
            raise TypeError(
                f"lasso_bases must be one of {choices} or a sequence of them, got {lasso_bases!r}."
            ) from None
        if not bases or not bases <= set(LASSO_BASES):
            raise ValueError(f"lasso_bases must be one or more of {choices}, got {lasso_bases!r}.")
        # In LASSO_BASES's order, whatever the caller's: ties go to the candidate added first.
        self.lasso_bases = tuple(basis for basis in LASSO_BASES if basis in bases)
        self.n_folds = check_int("n_folds", n_folds, 2, 20)
        self.screen_folds = check_int("screen_folds", screen_folds, 1, self.n_folds)
        self.max_trees = check_int("max_trees", max_trees, 1)
        self.min_child_samples = check_int("min_child_samples", min_child_samples, 1)
        self.early_stopping_rounds = check_int("early_stopping_rounds", early_stopping_rounds, 1)
        self.n_jobs = check_n_jobs(n_jobs)
        self.keep_probability = check_real(
            "keep_probability", keep_probability, 0.0, 1.0, low_open=True, high_open=True
        )

    def _min_sampled_budget(self, n_features: int) -> int:
        return self.MIN_BUDGET

    def _explain(
        self, value_function: ValueFunction, n_features: int, budget: int, rng: np.random.Generator
    ) -> list[OutputFit]:
        masks = uniform_masks(n_features, budget, rng, keep_probability=self.keep_probability)
        fits = self.fit_samples(masks, value_function(masks), rng)
        if self.keep_probability != 0.5:
            for fit in fits:
                fit.metadata["keep_probability"] = self.keep_probability
        return fits

    def fit_samples(
        self, masks: np.ndarray, values: np.ndarray, rng: np.random.Generator
    ) -> list[OutputFit]:
        """Fit every output on samples already paid for: distinct ``masks`` and their values.

        :meth:`explain` calls it on uniformly random masks; other designs'
        masks work too (:class:`~.auto.AutoSPEX` fits SPEX's coded ones).
        ``values`` has one row per mask (and one column per output, if several).

        Examples:
            >>> import numpy as np
            >>> import proxyspex_captum as psx
            >>> rng = np.random.default_rng(0)
            >>> masks = rng.random((400, 20)) < 0.5
            >>> values = 2.0 * (masks[:, 0] & masks[:, 1]) + masks[:, 2]
            >>> est = psx.ProxySPEX(max_order=2, uncertainty=False)
            >>> (fit,) = est.fit_samples(masks, values, rng)
            >>> round(fit.metadata["cv_r2"], 3)
            1.0
        """
        values = check_sample_values(values, len(masks))
        return each_from_the_same_draws(rng, values.T, lambda y: self._fit_output(masks, y, rng))

    def _fit_output(self, masks: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> OutputFit:
        if np.all(y == y[0]):  # a constant model: nothing to fit (ptp could overflow)
            # The draws a fit takes, taken all the same: the generator then moves on as
            # for any output, so another output's bootstrap seed does not depend on this one.
            _Fit.draw(self, len(y), rng)
            rows, coef = np.zeros((1, 0), np.int64), np.array([y[0]])
            info = {"n_trees": 0, "cv_r2": 1.0}
            return OutputFit(rows, coef, info, lambda _: (rows, coef), len(y))
        # Fit (y - centre) / scale: centred, so the float32 labels of LightGBM keep
        # the output's variation however large its level; scaled by a power of two
        # (exact), so outputs near 1e±300 work too.
        z, centre, scale = centre_and_scale(y)
        fit = _Fit(self, masks, z, rng)
        with fitting():
            rows, coef, info = fit.run()

        def refit(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rows, coef = fit.replicate(indices)
            return add_constant(rows, coef * scale, centre)

        return OutputFit(*add_constant(rows, coef * scale, centre), info, refit, len(y))

    def _n_threads(self) -> int:
        return self.n_workers()

    # ------------------------------------------------------------------ proxy
    def proxy_configs(self) -> list[tuple[int, float]]:
        """The ``(tree depth, learning rate)`` pairs the first folds choose among."""
        depths = DEPTHS if self.max_depth is None else np.atleast_1d(self.max_depth).tolist()
        rates = _LEARNING_RATES if self.learning_rate is None else self.learning_rate
        rates = np.atleast_1d(rates).tolist()
        cap = min(self.max_order, MAX_TREE_DEPTH)
        return list(dict.fromkeys((min(d, cap), r) for d in depths for r in rates))

    def lightgbm_params(self, depth: int, learning_rate: float, seed: int) -> dict:
        """LightGBM parameters of one proxy (single-threaded: folds run in parallel)."""
        return {
            "objective": "regression",
            "max_depth": depth,
            "num_leaves": 2**depth,
            "learning_rate": learning_rate,
            "min_data_in_leaf": self.min_child_samples,
            "seed": seed,
            "deterministic": True,
            # Row-wise histograms: on 0/1 features the same trees, 2-3x faster than
            # column-wise (measured at n = 32..1,000, 1,000-4,000 rows).
            "force_row_wise": True,
            "feature_pre_filter": False,
            "num_threads": 1,
            "verbosity": -1,
        }

    def n_workers(self) -> int:
        """Threads the folds run on (see ``n_jobs``)."""
        return threads_for(self.n_jobs)


def _one_or_several(name: str, value: Any, check: Any) -> Any:
    """``None``, one checked value, or a tuple of checked values (a non-empty sequence)."""
    if value is None or isinstance(value, str) or not isinstance(value, Sequence | np.ndarray):
        return None if value is None else check(name, value)
    if len(value) == 0:
        raise ValueError(f"{name} must be a value or a non-empty sequence of values, got [].")
    return tuple(check(f"{name}[{i}]", v) for i, v in enumerate(value))


@dataclass
class _Trained:
    """One fold's proxy and what its candidates are built from."""

    proxy: lgb.Booster
    rows: np.ndarray  # its non-constant Fourier terms, largest first
    coef: np.ndarray
    constant: float
    sizes: dict[Hashable, int] | None  # the ridge candidates' sizes (None: no refit of terms)
    features: np.ndarray | None  # Fourier features of its largest terms at every sample


def _errors(scores: Iterable[tuple[Hashable, float, np.ndarray]]) -> CVErrors:
    """One fold's errors of the given candidates ``(key, sse, held-out residual)``."""
    errors = CVErrors()
    for key, sse, residual in scores:
        errors.add(key, sse, residual)
    return errors


class _Fit:
    """One output's cross-validated fit: proxies on folds, candidates scored, the best refitted."""

    @staticmethod
    def draw(
        estimator: ProxySPEX, n_samples: int, rng: np.random.Generator
    ) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
        """A fit's random choices: the proxies' LightGBM seed and the folds."""
        seed = int(rng.integers(2**31 - 1))
        return seed, list(fold_indices(n_samples, estimator.n_folds, rng))

    def __init__(
        self, estimator: ProxySPEX, masks: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> None:
        self.est, self.masks, self.y = estimator, masks, y
        self.x = masks.astype(np.float32)
        self.seed, self.folds = self.draw(estimator, len(y), rng)
        # Every sample binned once (any depth and rate: only the binning keys matter);
        # each proxy trains and stops on subsets of its rows.
        self.binned = binned_once(self.x, y, estimator.lightgbm_params(1, 0.1, self.seed))
        n = masks.shape[1]
        self.singles = singletons(n)
        self.main = fourier_features(masks, self.singles)  # ±1 main-effect features
        self.errors = CVErrors()
        self.tolerance = tie_tolerance(y)
        self.lassos = tuple(LASSO_BASES[basis] for basis in estimator.lasso_bases)
        self.use = {
            "proxy": estimator.refit in ("auto", "proxy"),
            "ridge": estimator.refit in ("auto", "ridge"),
            "lasso": estimator.refit in ("auto", "lasso"),
            "linear": estimator.refit in ("auto", "linear"),
        }

    # ---------------------------------------------------------------- folds
    def _train_proxy(
        self, config: tuple[int, float], train: np.ndarray, test: np.ndarray
    ) -> lgb.Booster:
        params = self.est.lightgbm_params(*config, self.seed)
        return boost(
            params,
            self.binned.subset(train),
            self.binned.subset(test),
            max_rounds=self.est.max_trees,
            patience=self.est.early_stopping_rounds,
        )

    def _trained(self, config: tuple[int, float], train: np.ndarray, test: np.ndarray) -> _Trained:
        """One fold's proxy, trained and read: its ranked terms and their Fourier features."""
        proxy = self._train_proxy(config, train, test)
        rows, coef, constant = ranked_terms(proxy)
        sizes, features = None, None
        if len(rows) and (self.use["ridge"] or self.use["lasso"]):
            sizes = self._support_sizes(coef, len(train))
            features = fourier_features(self.masks, rows[: max(max(sizes.values()), _LASSO_POOL)])
        return _Trained(proxy, rows, coef, constant, sizes, features)

    def _scoring_jobs(
        self, fold: _Trained, train: np.ndarray, test: np.ndarray
    ) -> list[Callable[[], CVErrors]]:
        """The candidates built on one fold's proxy, scored on its held-out rows, as jobs.

        Each job returns its candidates' errors; merged in this order they are the
        fold's. Separate jobs keep every worker busy at the end of a phase, when
        fewer folds than workers are left (3 folds after screening, on 2 workers,
        left one idle for half a fold).
        """
        y, jobs = self.y, []
        if self.use["proxy"]:

            def proxy() -> CVErrors:
                # num_threads=1: LightGBM's predict sets a process-wide thread count (all
                # cores by default), which changed the folds training on other threads.
                residual = fold.proxy.predict(self.x[test], num_threads=1) - y[test]
                return _errors([("proxy", float(residual @ residual), residual)])

            jobs.append(proxy)
        if len(fold.rows) == 0:
            # No split: every candidate built on this proxy is the constant (its
            # training mean), scored as such, so no fold goes missing from the choice.
            residual = y[train].mean() - y[test]
            # The error summed as before residuals were kept: the same bits.
            sse = float(np.sum((y[test] - y[train].mean()) ** 2))
            keys: list[Hashable] = []
            if self.use["ridge"]:  # only the families the refit option allows
                keys += [("ridge", k) for k in _SUPPORT_SIZES] + ["ridge-energy"]
            if self.use["lasso"]:
                keys += [(name, step) for name in self.lassos for step in range(N_ALPHAS)]
            return [*jobs, lambda: _errors((key, sse, residual) for key in keys)]
        features = fold.features
        if self.use["ridge"]:

            def ridge() -> CVErrors:
                keys, ks = list(fold.sizes), list(fold.sizes.values())
                sses, residuals = ridge_prefix_residuals(
                    features[train], y[train], features[test], y[test], ks
                )
                return _errors(zip(keys, sses, residuals, strict=True))

            jobs.append(ridge)
        if self.use["lasso"]:

            def lasso(name: Hashable) -> CVErrors:
                columns = self._lasso_features(name, fold.rows, features)
                alphas = _lasso_alphas(name, columns[train], y[train])
                sse, residuals = lasso_path_residuals(
                    columns[train],
                    y[train],
                    columns[test],
                    y[test],
                    alphas,
                    patience=PATH_PATIENCE,
                )
                errors = CVErrors()
                errors.add_path(name, sse, residuals)
                return errors

            jobs += [partial(lasso, name) for name in self.lassos]
        return jobs

    def _lasso_features(
        self,
        name: Hashable,
        rows: np.ndarray,
        fourier: np.ndarray | None = None,
        samples: np.ndarray | slice = slice(None),
    ) -> np.ndarray:
        """The lasso ``name``'s columns at ``samples``: the proxy's largest terms as features.

        ``fourier``: the Fourier features of ``rows`` at every sample, when already built.
        """
        if name == "lasso-mobius":
            return and_features(self.masks[samples], rows[:_LASSO_POOL])
        if fourier is None:
            return fourier_features(self.masks[samples], rows[:_LASSO_POOL])
        return fourier[samples, :_LASSO_POOL]

    def _support_sizes(self, coef: np.ndarray, n_train: int) -> dict[Hashable, int]:
        """Ridge candidates ``("ridge", K)`` -> the number of largest terms they keep."""
        cap = max(1, n_train // 2)  # never more terms than half the samples
        cumulative = np.cumsum(coef**2)
        n_energy = int(np.searchsorted(cumulative, self.est.energy * cumulative[-1]) + 1)
        sizes = {("ridge", k): min(k, len(coef), cap) for k in _SUPPORT_SIZES}
        sizes["ridge-energy"] = min(n_energy, len(coef), cap)
        return sizes

    # ------------------------------------------------------------------ run
    def _score_when_trained(
        self,
        pool: ThreadPoolExecutor,
        trained: list[Future[_Trained]],
        folds: list[tuple[np.ndarray, np.ndarray]],
    ) -> list[tuple[CVErrors, _Trained]]:
        """Each fold's errors and proxy, its scoring jobs queued as soon as it is trained.

        The errors are merged in a fixed order, so they do not depend on which
        job finished first or on the number of workers.
        """
        index = {job: i for i, job in enumerate(trained)}
        scoring: list[list[Future[CVErrors]]] = [[] for _ in trained]
        for job in as_completed(trained):
            i = index[job]
            fold = job.result()
            scoring[i] = [pool.submit(j) for j in self._scoring_jobs(fold, *folds[i])]
            # Its jobs hold the features; dropped here, they go when the jobs are done
            # (kept, every fold's would live until the fit ends: twice the peak memory).
            fold.features = None
        out = []
        for job, parts in zip(trained, scoring, strict=True):
            errors = CVErrors()
            for part in parts:
                errors.merge(part.result())
            out.append((errors, job.result()))
        return out

    def _linear(self, train: np.ndarray, test: np.ndarray) -> CVErrors:
        errors = CVErrors()
        score_linear(errors, self.main, self.y, train, test)
        return errors

    def run(self) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        configs = self.est.proxy_configs()
        screen = self.folds[: self.est.screen_folds if len(configs) > 1 else 0]
        # Folds are independent: they run on a pool of threads (LightGBM, BLAS and
        # the lasso release the GIL), each fit single-threaded, and their errors are
        # summed in fold order, so the result does not depend on the number of workers.
        with ThreadPoolExecutor(self.est.n_workers()) as pool:
            # Successive halving: every proxy configuration on the first folds, the
            # best on the rest. The proxies are queued first (the longest jobs); the
            # linear candidates need no proxy and are queued right behind them.
            trial_jobs = [pool.submit(self._trained, c, *f) for c in configs for f in screen]
            linear_jobs = [pool.submit(self._linear, *f) for f in self.folds if self.use["linear"]]
            scored = self._score_when_trained(pool, trial_jobs, screen * len(configs))
            k = len(screen)
            trials = [scored[i * k : (i + 1) * k] for i in range(len(configs))]
            scores = [_least_error([errors for errors, _ in folds]) for folds in trials]
            # Near-equal errors are ties, won by the first (shallower) configuration.
            chosen = next(i for i, s in enumerate(scores) if s <= min(scores) + self.tolerance)
            config = configs[chosen]
            rest = self.folds[len(screen) :]
            rest_jobs = [pool.submit(self._trained, config, *f) for f in rest]
            folds = trials[chosen] + self._score_when_trained(pool, rest_jobs, rest)
            linear = [job.result() for job in linear_jobs]
        # The result's refit closure keeps this fit alive; the binned rows are not needed.
        self.binned = None
        for errors in [errors for errors, _ in folds] + linear:
            self.errors.merge(errors)
        proxies = [fold.proxy for _, fold in folds]
        # The result's proxy: the mean of the fold proxies (each saw all but one fold).
        rows, coef = _mean_transform([(fold.rows, fold.coef) for _, fold in folds])
        self.constant = float(np.mean([fold.constant for _, fold in folds]))
        name, key = self._choose()
        self.errors.drop_residuals()  # the choice is made; the fit may outlive it
        n_trees = round(float(np.mean([p.best_iteration or p.num_trees() for p in proxies])))
        self.choice = (config, max(n_trees, 1), name, key)
        y = self.y
        spread = float(np.sum((y - y.mean()) ** 2))
        info: dict[str, Any] = {
            "tree_depth": config[0],
            "learning_rate": config[1],
            "n_trees": n_trees,
            "n_proxy_terms": len(rows),
            "refit": _refit_name(key),
            # Held-out squared error of the chosen model on every fold: no extra model calls.
            "cv_r2": 1.0 - self.errors.sse[key] / spread,
        }
        out_rows, out_coef = self._final(name, key, rows, coef)
        info["n_terms"] = int(np.sum(set_sizes(out_rows) > 0))
        return out_rows, out_coef, info

    def _choose(self) -> tuple[Hashable, Hashable]:
        """The candidate refitted on every sample: the least cross-validated error,
        except that a ridge must beat the best lasso by more than one standard
        error, and then is averaged with it.

        Every candidate is scored on four fifths of the samples and refitted on all
        of them, and the lasso over the proxy's terms gains more from the last
        fifth than the ridge over its largest ones. On the tuning set (79 runs,
        51 cells and a second seed where calls per feature are at most 2) the
        ridge won the cross-validation in 21, and in 17 of those the lasso was
        better on held-out masks, by up to 0.11 R² (hierarchical n = 512 at 500
        calls: the lasso's held-out R² 0.02-0.09 above its cross-validated one, the
        ridge's -0.01 to +0.03). Keeping the ridge only when it wins by more than
        one standard error of the per-fold differences (the one-standard-error
        rule, here between the two refits): +0.0045 R² on average, 10 runs better
        by more than 0.005 and 1 worse (by 0.012), the others unchanged. A ridge
        that is not clearly better gives way to the best of the other candidates.

        A ridge that is clearly better is averaged with that lasso (the
        candidate ``("blend", ridge, lasso)``: the mean of the two refits, its
        cross-validated error that of the mean of their held-out predictions),
        unless that mean's error is more than ``_MEAN_ERROR_RATIO`` times the
        ridge's (a nearly exact ridge and a shrunk lasso). On the tuning cells
        with at most 2 calls per feature (84 runs, the ridge won in 13):
        +0.0025 R² on average, 11 runs better by more than 0.005, 1 worse (by
        0.005); the alternatives measured are in docs/design.md.
        """
        name, key = self.errors.best(self.tolerance)
        if name not in _RIDGES or self.est.refit != "auto" or not self.lassos:
            return name, key
        _, lasso_key = self.errors.best(self.tolerance, among=self.lassos)
        if clearly_better(self.errors, key, lasso_key):
            blend = (BLEND, key, lasso_key)
            self.errors.add_mean(blend, [key, lasso_key])
            if self.errors.sse[blend] <= _MEAN_ERROR_RATIO * self.errors.sse[key]:
                return BLEND, blend
            return name, key
        # Not clearly better: the best candidate but the ridges (on the tuning set,
        # the lasso each time; the proxy or a linear model if either beats it).
        others = {candidate_name(k) for k in self.errors.sse} - set(_RIDGES)
        return self.errors.best(self.tolerance, among=others)

    def replicate(self, indices: np.ndarray) -> _Terms:
        """The chosen model refitted on the sample rows ``indices`` (a bootstrap resample).

        The choices the cross-validation made are kept (tree depth, learning
        rate, number of trees, refit and its size or lasso step); the proxy's
        terms and the refit's coefficients are what a resample changes. A
        lasso's selection is refitted unshrunk (:func:`relaxed`), so the
        resamples' deviation from the estimate includes the lasso's shrinkage.
        """
        (depth, rate), n_trees, name, key = self.choice
        if name in LINEAR_CANDIDATES:  # no proxy to train
            return self._candidate(name, key, None, None, 0.0, indices, unshrunk=True)
        params = self.est.lightgbm_params(depth, rate, self.seed)
        train_set = lgb.Dataset(self.x[indices], self.y[indices], params=params)
        rows, coef, constant = ranked_terms(lgb.train(params, train_set, num_boost_round=n_trees))
        # A proxy without a split gives the constant, whatever the candidate (_candidate).
        return self._candidate(name, key, rows, coef, constant, indices, unshrunk=True)

    def _final(self, name: Hashable, key: Hashable, rows: np.ndarray, coef: np.ndarray) -> _Terms:
        """Refit the chosen candidate on every sample (the proxy: the mean of the fold proxies)."""
        return self._candidate(name, key, rows, coef, self.constant)

    def _candidate(
        self,
        name: Hashable,
        key: Hashable,
        rows: np.ndarray | None,
        coef: np.ndarray | None,
        constant: float,
        samples: np.ndarray | slice = slice(None),
        *,
        unshrunk: bool = False,
    ) -> _Terms:
        """The candidate ``key`` fitted on the sample rows ``samples`` over a proxy's ranked terms.

        ``unshrunk``: refit a lasso's selection without its penalty (the resamples).
        """
        if name == BLEND:  # the mean of its parts, each refitted as it would be alone
            parts = [
                self._candidate(
                    candidate_name(part), part, rows, coef, constant, samples, unshrunk=unshrunk
                )
                for part in blend_parts(key)
            ]
            return _mean_transform(parts)
        masks, y = self.masks[samples], self.y[samples]
        if name == "proxy":
            return with_intercept(rows, coef, constant)
        if name in LINEAR_CANDIDATES:
            main = self.main[samples]
            columns, beta, intercept = fit_linear(key, main, y)
            if unshrunk and name != "linear":
                beta, intercept = relaxed(main[:, columns], y)
            return with_intercept(self.singles[columns], beta, intercept)
        if len(rows) == 0:  # no fold's proxy split: its terms' refits are the constant
            return with_intercept(rows, coef, constant)
        if name in LASSO_BASES.values():
            x = self._lasso_features(name, rows, samples=samples)
            pool = rows[: x.shape[1]]
            beta, intercept = lasso_fit(x, y, _lasso_alphas(name, x, y)[key[1]])
            used = beta != 0
            beta, intercept = relaxed(x[:, used], y) if unshrunk else (beta[used], intercept)
            if name == "lasso-mobius":  # v(m) = intercept + Σ beta_S 1[S ⊆ m]
                return mobius_to_fourier(*with_intercept(pool[used], beta, intercept))
            return with_intercept(pool[used], beta, intercept)
        # A ridge refit of the K largest, capped as in the folds (half a fold's training rows).
        n_train = len(y) * (self.est.n_folds - 1) // self.est.n_folds
        k = self._support_sizes(coef, n_train)[key]
        fit = ridge_gcv(fourier_features(masks, rows[:k]), y)
        return with_intercept(rows[:k], fit.coef, fit.intercept)


def _refit_name(key: Hashable) -> str:
    """The chosen candidate's name in ``metadata["refit"]``: a blend names its parts.

    >>> _refit_name(("lasso", 7)), _refit_name((BLEND, ("ridge", 50), ("lasso-mobius", 9)))
    ('lasso', 'ridge+lasso-mobius')
    """
    if candidate_name(key) == BLEND:
        return "+".join(str(candidate_name(part)) for part in blend_parts(key))
    return str(candidate_name(key))


def blend_parts(key: Hashable) -> tuple[Hashable, Hashable]:
    """The ridge and lasso keys that the blend candidate ``key`` averages.

    >>> blend_parts((BLEND, ("ridge", 50), ("lasso", 9)))
    (('ridge', 50), ('lasso', 9))
    """
    if not (isinstance(key, tuple) and len(key) == 3 and key[0] == BLEND):
        raise ValueError(f"not a blend candidate's key: {key!r}")
    return key[1], key[2]


def _lasso_alphas(name: Hashable, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The penalty grid of the lasso ``name`` (see ``_MOBIUS_ALPHA_RATIO``)."""
    if name == "lasso-mobius":
        return lasso_alphas(x, y, ratio=_MOBIUS_ALPHA_RATIO)
    return lasso_alphas(x, y)


def _least_error(fold_errors: list[CVErrors]) -> float:
    """The least error, summed over the given folds, of any candidate scored on all of them."""
    total = CVErrors()
    for errors in fold_errors:
        total.merge(errors)
    return total.least()


def ranked_terms(model: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """The non-constant Fourier terms of a tree model, largest first, and its constant."""
    rows, coef = tree_ensemble_fourier(model)
    nonempty = set_sizes(rows) > 0
    constant = float(coef[~nonempty].sum())
    rows, coef = rows[nonempty], coef[nonempty]
    order = np.argsort(-(coef**2), kind="stable")
    return rows[order], coef[order], constant


def _mean_transform(transforms: list[_Terms]) -> _Terms:
    """The ranked Fourier terms of the mean of several models (the transform is linear)."""
    parts = [(r, c) for r, c in transforms if len(r)]
    if not parts:
        return np.zeros((0, 1), np.int64), np.zeros(0)
    width = max(r.shape[1] for r, _ in parts)
    rows = np.vstack([widen(r, width) for r, _ in parts])
    rows, coef = aggregate(rows, np.concatenate([c for _, c in parts]) / len(transforms))
    order = np.argsort(-(coef**2), kind="stable")
    return rows[order], coef[order]
