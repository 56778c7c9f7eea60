"""ProxySPEX: interactions read off a gradient-boosted tree proxy.

1. Query the model on uniformly random masks (the empty and full masks included).
2. Fit a LightGBM proxy with early stopping on a held-out split, then refit it
   on all samples at the best number of trees. (The reference implementation
   grid-searches 40+ fits; early stopping matches its faithfulness in a
   fraction of the time: see ``benchmarks/``.)
3. Read the exact Fourier transform off the trees (:mod:`.tree_fourier`).
4. Keep the coefficients that carry ``energy`` (95 %) of the non-constant
   energy, plus the intercept, and refit them by ridge regression on the
   Fourier features of the same samples; the number of coefficients kept is
   chosen among a few nested candidates by the ridge's own leave-one-out error,
   so a proxy with a huge support cannot swamp the refit.

When the budget covers all ``2**n`` masks the transform is computed exactly
instead (see :class:`.base.InteractionEstimator`).
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np

from .base import InteractionEstimator, power_of_two_scale
from .checks import check_int, check_optional_int, check_real
from .ridge import ridge_gcv
from .sampling import uniform_masks
from .subsets import PAD, fourier_features, set_sizes
from .tree_fourier import tree_ensemble_fourier
from .value_function import ValueFunction

__all__ = ["ProxySPEX"]

# Candidate sizes of the refitted support; the energy cut is always a candidate too.
_SUPPORT_SIZES = (25, 50, 100, 200, 400, 800)
# Below this many samples the proxy's trees are at most 3 deep (measured: see max_depth).
_DEEP_TREES_FROM = 1000
# A leaf at depth d adds 2**d Fourier terms, so reading the transform off the trees
# grows as 2**depth: depth 8 (256 terms a leaf) is the most accepted, and without an
# explicit max_depth a larger max_order builds trees of depth 6 at most.
MAX_TREE_DEPTH = 8
_DEFAULT_DEPTH_CAP = 6
# n_jobs="auto": one LightGBM thread for fits of fewer mask entries than this (see n_jobs).
_ONE_THREAD_BELOW = 1_000_000


class ProxySPEX(InteractionEstimator):
    """Sparse interactions from a LightGBM proxy of the value function.

    Args:
        max_order: Largest interaction order (bounds the proxy's tree depth).
        max_depth: Depth of the proxy's trees, at most ``max_order`` and 8;
            ``None`` picks ``min(max_order, 6)``, or ``min(max_order, 3)`` below
            1,000 samples, where shallower trees fit better (R² at budget 500,
            mean of 2 seeds, depth 3 vs 4: SOUM n=512 0.54 vs 0.43, hierarchical
            n=512 0.946 vs 0.935; at 1,000 depth 4 wins on hierarchical games).
            A tree of depth ``d`` carries interactions of order ``d`` at most, and
            reading its Fourier transform costs ``2**d`` terms per leaf: orders
            above 5 are rarely worth their cost.
        energy: Fraction of the proxy's non-constant Fourier energy to keep
            before the ridge refit.
        learning_rate: LightGBM learning rate.
        max_trees: Most boosting rounds; early stopping usually ends far sooner.
        min_child_samples: LightGBM's smallest leaf.
        validation_fraction: Share of the samples held out for early stopping.
        early_stopping_rounds: Rounds without validation improvement before stopping.
        n_jobs: LightGBM threads. ``"auto"`` (default): one thread for fits of
            fewer than a million mask entries (samples × features), LightGBM's
            default (every core) above. Measured on 2 cores
            (``benchmarks/results/lightgbm_threads.md``): on an idle machine
            every core was 10–20 % faster on small fits and 1.7x faster at
            n = 512, budget 2,000; with the cores busy it was 4.8–6.8x slower
            on small fits and 2.3x slower at n = 512. ``None`` or an int
            ``<= 0``: LightGBM's default; a positive int: that many threads.
        random_state: Seed or ``numpy.random.Generator``; the same seed gives
            the same masks and the same result.
        batch_size: Largest number of masks per model call.
        show_progress: Show a progress bar over the model calls.

    Examples:
        >>> import numpy as np
        >>> import proxyspex_captum as psx
        >>> def model(masks):  # features 0 and 1 only matter together
        ...     return 2.0 * (masks[:, 0] & masks[:, 1]) + masks[:, 2]
        >>> inter = psx.ProxySPEX(max_order=2, random_state=0).explain(
        ...     model, n_features=30, budget=500
        ... )
        >>> [(s, round(v, 3)) for s, v in inter.top(2)]
        [((0, 1), 2.0), ((2,), 1.0)]
    """

    name = "proxyspex"
    #: Fewest model calls accepted (or ``2**n`` if smaller: then every mask is queried).
    MIN_BUDGET = 100

    def __init__(
        self,
        *,
        max_order: int = 4,
        max_depth: int | None = None,
        energy: float = 0.95,
        learning_rate: float = 0.1,
        max_trees: int = 2000,
        min_child_samples: int = 5,
        validation_fraction: float = 0.2,
        early_stopping_rounds: int = 50,
        n_jobs: int | str | None = "auto",
        random_state: int | np.random.Generator | None = None,
        batch_size: int | str | None = "auto",
        show_progress: bool = False,
    ) -> None:
        super().__init__(
            max_order=max_order,
            random_state=random_state,
            batch_size=batch_size,
            show_progress=show_progress,
        )
        self.max_depth = check_optional_int(
            "max_depth", max_depth, 1, min(self.max_order, MAX_TREE_DEPTH)
        )
        self.energy = check_real("energy", energy, 0.0, 1.0, low_open=True)
        self.learning_rate = check_real("learning_rate", learning_rate, 0.0, 1.0, low_open=True)
        self.max_trees = check_int("max_trees", max_trees, 1)
        self.min_child_samples = check_int("min_child_samples", min_child_samples, 1)
        self.validation_fraction = check_real(
            "validation_fraction", validation_fraction, 0.0, 1.0, low_open=True, high_open=True
        )
        self.early_stopping_rounds = check_int("early_stopping_rounds", early_stopping_rounds, 1)
        if n_jobs != "auto" and n_jobs is not None:
            if isinstance(n_jobs, str):
                raise ValueError(f"n_jobs must be 'auto', None or an integer, got {n_jobs!r}.")
            check_int("n_jobs", n_jobs)  # <= 0: LightGBM's default, every core
        self.n_jobs = n_jobs

    def _min_sampled_budget(self, n_features: int) -> int:
        return self.MIN_BUDGET

    def _explain(
        self, value_function: ValueFunction, n_features: int, budget: int, rng: np.random.Generator
    ) -> list[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
        masks = uniform_masks(n_features, budget, rng)
        values = value_function(masks).reshape(len(masks), -1)
        return [self._fit_output(masks, y, rng) for y in values.T]

    # ------------------------------------------------------------------ proxy
    def _fit_proxy(
        self, masks: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[lgb.Booster, dict[str, Any]]:
        x = masks.astype(np.float32)
        depth = self.max_depth
        if depth is None:
            cap = _DEFAULT_DEPTH_CAP if len(y) >= _DEEP_TREES_FROM else 3
            depth = min(self.max_order, cap)
        params = {
            "objective": "regression",
            "max_depth": depth,
            "num_leaves": 2**depth,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_child_samples,
            "seed": int(rng.integers(2**31 - 1)),
            "deterministic": True,
            "force_col_wise": True,
            "feature_pre_filter": False,
            "verbosity": -1,
        }
        threads = self.n_jobs
        if threads == "auto":
            threads = 1 if x.size < _ONE_THREAD_BELOW else None
        if threads is not None:
            params["num_threads"] = threads
        order = rng.permutation(len(y))
        n_val = max(1, round(self.validation_fraction * len(y)))
        val, train = order[:n_val], order[n_val:]
        train_set = lgb.Dataset(x[train], y[train], params=params)
        probe = lgb.train(
            params,
            train_set,
            num_boost_round=self.max_trees,
            valid_sets=[lgb.Dataset(x[val], y[val], reference=train_set)],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        n_trees = max(1, probe.best_iteration or self.max_trees)
        residual = y[val] - probe.predict(x[val], num_iteration=n_trees)
        spread = float(np.var(y[val]))
        val_r2 = 1.0 - float(np.mean(residual**2)) / spread if spread > 0 else float("nan")
        # Refit on every sample at the early-stopped size: no sample is wasted.
        proxy = lgb.train(params, lgb.Dataset(x, y, params=params), num_boost_round=n_trees)
        return proxy, {"n_trees": n_trees, "tree_depth": depth, "proxy_validation_r2": val_r2}

    def _fit_output(
        self, masks: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        if np.all(y == y[0]):  # a constant model: nothing to fit (ptp could overflow)
            return np.zeros((1, 0), np.int64), np.array([y[0]]), {"n_trees": 0, "cv_r2": 1.0}
        # Fit y / scale (exact: a power of two), so outputs near 1e±300 work too.
        scale = power_of_two_scale(y)
        rows, coef, info = self._fit_scaled(masks, y / scale, rng)
        return rows, coef * scale, info

    def _fit_scaled(
        self, masks: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        proxy, info = self._fit_proxy(masks, y, rng)
        rows, coef = tree_ensemble_fourier(proxy)
        nonempty = set_sizes(rows) > 0
        if not nonempty.any():  # the proxy found no split: the model looks constant
            info.update(n_proxy_terms=0, n_terms=0, cv_r2=0.0)
            return np.zeros((1, 0), np.int64), np.array([float(np.mean(y))]), info
        rows, coef = rows[nonempty], coef[nonempty]

        # Energy cut: the fewest largest coefficients carrying `energy` of the
        # non-constant energy (the first index where the running sum reaches it, plus one).
        ranked = np.argsort(-(coef**2), kind="stable")
        cumulative = np.cumsum(coef[ranked] ** 2)
        n_energy = int(np.searchsorted(cumulative, self.energy * cumulative[-1]) + 1)
        n_energy = min(n_energy, len(ranked))
        # The energy cut alone often drops real high-order terms (their Fourier
        # energy is small) or keeps thousands of noise terms; let the ridge's own
        # leave-one-out error pick among it and a few nested sizes around it.
        cap = max(1, len(y) // 2)
        sizes = sorted({min(k, len(ranked), cap) for k in (*_SUPPORT_SIZES, n_energy)})

        features = fourier_features(masks, rows[ranked[: sizes[-1]]])
        fits = {k: ridge_gcv(features[:, :k], y) for k in sizes}
        k = min(fits, key=lambda size: fits[size].gcv)
        kept = rows[ranked[:k]]
        out_rows = np.vstack([np.full((1, kept.shape[1]), PAD), kept])
        out_coef = np.concatenate([[fits[k].intercept], fits[k].coef])
        info.update(
            n_proxy_terms=len(coef),
            n_energy_terms=n_energy,
            n_terms=k,
            ridge_alpha=fits[k].alpha,
            # GCV approximates the refit's leave-one-out error: no extra model calls.
            cv_r2=1.0 - fits[k].gcv / float(np.var(y)),
        )
        return out_rows, out_coef, info
