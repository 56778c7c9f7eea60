"""The small base class shared by the interaction estimators (ProxySPEX, SPEX)."""

from __future__ import annotations

import math
import os
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any, NamedTuple

import numpy as np

from .cache import MaskStore, open_store
from .checks import check_feature_names, check_int
from .executors import DEFAULT_RETRIES, check_executor
from .interactions import Interactions
from .sampling import all_masks, as_generator
from .sparse_fit import fitting
from .subsets import pad_sets
from .uncertainty import DEFAULT_RESAMPLES, Refit, bootstrap, resample_seed
from .value_function import MaskFunction, ValueFunction, check_batch_size
from .walsh import fwht

__all__ = [
    "InteractionEstimator",
    "OutputFit",
    "PoorFitWarning",
    "centre_and_scale",
    "check_sample_values",
    "power_of_two_scale",
]


# Enumerate every mask instead of sampling when 2**n fits in the budget and n is this
# small. Measured: a budget of 2**20 peaks at 0.7 GB (the value cache dominates), 2**22
# at 2.3 GB, more than the 1 GiB allowed to the masks of a sampled budget.
EXACT_MAX_FEATURES = 20
# An exact fit holds terms up to min(max_order, n); the Möbius expansion of an order-k
# term has 2**k sets, and Interactions refuses more than 2**18 (MAX_EXPANSION_SETS).
_EXACT_MAX_ORDER = 18
# The budget used when the caller gives none: "a few thousand model calls"
# (docs/design.md, "What the library does") at most.
DEFAULT_BUDGET = 1000
# The masks of one explanation are held in memory (budget × n_features booleans,
# and their bit-packed copy): refuse a budget whose masks would exceed this.
MAX_MASK_BYTES = 2**30
# Warn when the estimator's own cross-validated R² is below this.
POOR_FIT_R2 = 0.5
# An exact fit warns when more than this share of the variance lies above max_order, or
# when the terms above it move a Shapley value by more than this share of the largest.
TRUNCATION_WARNING = 0.01


class PoorFitWarning(UserWarning):
    """The interactions reproduce the model poorly (cross-validated R² below 0.5).

    Also when every mask was queried (the exact transform) but more than 1 % of
    the model's variance lies in interactions above ``max_order``, which the
    result leaves out.

    Raised as a warning, never an error: the result is still the best the
    budget allows. Raise the budget, lower ``max_order``, use coarser features,
    or check whether the model is noisy (e.g. sampling at a temperature).
    """


class OutputFit(NamedTuple):
    """One output's fit: its Fourier terms, and how to refit it on a resample of its samples."""

    rows: np.ndarray
    values: np.ndarray
    metadata: dict[str, Any]
    #: Refits the chosen model on sample rows (with repeats); None: nothing to resample.
    refit: Refit | None = None
    #: Number of samples (distinct masks with their values) the fit was made on.
    n_samples: int = 0


PerOutput = list[OutputFit]


class InteractionEstimator(ABC):
    """Validates input, wraps the value function and times the estimator's own work.

    Subclasses implement :meth:`_min_sampled_budget` and :meth:`_explain`, which
    gets a ready :class:`ValueFunction` and a seeded generator and returns an
    :class:`OutputFit` per output: its Fourier coefficients, metadata, and a
    ``refit`` that fits the same chosen model on a resample of its samples.
    With ``uncertainty=True`` the base class runs those refits on bootstrap
    resamples (no model call) and the result carries them
    (:meth:`Interactions.intervals`). When the budget covers all ``2**n``
    masks, every estimator computes the exact transform instead (a fast
    Walsh–Hadamard transform of the full table), which has no sampling error.
    """

    name = "estimator"
    _budget_hint = ""  # how else to fit a small budget, appended to the error

    def __init__(
        self,
        *,
        max_order: int,
        random_state: int | np.random.Generator | None = None,
        batch_size: int | str | None = "auto",
        show_progress: bool = False,
        uncertainty: bool = True,
        n_resamples: int = DEFAULT_RESAMPLES,
    ) -> None:
        self.max_order = check_int("max_order", max_order, 1)
        if random_state is not None and not isinstance(random_state, np.random.Generator):
            check_int("random_state", random_state, 0)
        self.random_state = random_state
        self.batch_size = check_batch_size(batch_size)
        self.show_progress = bool(show_progress)
        if not isinstance(uncertainty, bool | np.bool_):
            raise TypeError(f"uncertainty must be True or False, got {uncertainty!r}.")
        self.uncertainty = bool(uncertainty)
        self.n_resamples = check_int("n_resamples", n_resamples, 2)

    @property
    def makes_resamples(self) -> bool:
        """Whether a sampled result will carry bootstrap resamples (its intervals)."""
        return self.uncertainty

    def min_budget(self, n_features: int) -> int:
        """Fewest model calls this estimator can work with for ``n_features`` features."""
        need = self._min_sampled_budget(n_features)
        if n_features <= EXACT_MAX_FEATURES:
            need = min(need, 2**n_features)
        return need

    def sampled_min_budget(self, n_features: int) -> int:
        """Fewest model calls the estimator's sampled design needs (the ``2**n`` route aside)."""
        return self._min_sampled_budget(check_int("n_features", n_features, 1))

    def default_budget(self, n_features: int) -> int:
        """Budget used when none is given: ``2**n`` for small ``n`` (exact), else at least 1,000.

        It is twice the estimator's smallest sampled design when that is larger
        (SPEX at many features or high order), so the default always leaves the
        estimator room to work.
        """
        budget = max(DEFAULT_BUDGET, 2 * self._min_sampled_budget(n_features))
        if n_features <= EXACT_MAX_FEATURES:
            budget = min(budget, 2**n_features)
        return budget

    def max_queries(self, n_features: int, budget: int) -> int:
        """Most distinct masks :meth:`explain` sends for ``budget`` (a progress bar's total)."""
        return min(budget, 2 ** min(n_features, 62))

    def check_budget(self, n_features: int, budget: Any) -> int:
        """Return ``budget`` as an int, or raise if it is too small for ``n_features``.

        Adapters call this before their first model call, so a budget that
        cannot work is refused before any model time is spent.
        """
        n_features = check_int("n_features", n_features, 1)
        budget = check_int("budget", budget, 1)
        need = self.min_budget(n_features)
        if budget < need:
            raise ValueError(
                f"{type(self).__name__} needs a budget of at least {need} model calls for "
                f"{n_features} features, got {budget}. Raise the budget{self._budget_hint}."
            )
        if n_features < 63 and budget >= 2**n_features:  # "every mask"
            if n_features > EXACT_MAX_FEATURES:
                raise ValueError(
                    f"A budget of {budget} covers all 2**{n_features} masks, more than the "
                    f"{2**EXACT_MAX_FEATURES} (2**{EXACT_MAX_FEATURES}) that fit in memory "
                    "at once; pass a smaller budget to sample masks instead."
                )
            if min(self.max_order, n_features) > _EXACT_MAX_ORDER:
                raise ValueError(
                    f"An exact fit of all 2**{n_features} masks with max_order="
                    f"{self.max_order} may hold terms of order {min(self.max_order, n_features)}"
                    f", whose Möbius expansions (2**order sets each) are too large to read; "
                    f"use max_order <= {_EXACT_MAX_ORDER}."
                )
            return 2**n_features
        if budget * n_features > MAX_MASK_BYTES:
            raise ValueError(
                f"A budget of {budget} masks of {n_features} features needs "
                f"{budget * n_features / 2**30:.1f} GiB for the masks alone; at most "
                f"{MAX_MASK_BYTES // n_features} calls fit the {MAX_MASK_BYTES // 2**30} GiB "
                "limit. Use a smaller budget (a few thousand calls is typical), or group "
                "features."
            )
        return budget

    @abstractmethod
    def _min_sampled_budget(self, n_features: int) -> int:
        """Fewest model calls the estimator's own (sampled) design needs."""

    @abstractmethod
    def _explain(
        self, value_function: ValueFunction, n_features: int, budget: int, rng: np.random.Generator
    ) -> PerOutput:
        """Query ``value_function`` and return ``(rows, fourier values, metadata)`` per output."""

    def _exact(self, value_function: ValueFunction, n_features: int) -> PerOutput:
        """The exact transform from all ``2**n`` masks, truncated to ``max_order``."""
        masks = all_masks(n_features)
        table = value_function(masks).reshape(len(masks), -1)
        # Row r of the table is the mask whose bits are r, so coefficient r belongs to that set.
        within = masks.sum(axis=1) <= self.max_order
        rows = pad_sets(np.flatnonzero(m) for m in masks[within])
        out = []
        for j, column in enumerate(table.T):
            scale = power_of_two_scale(column)  # exact; keeps sums of 1e308s finite
            coef = fwht(column / scale) / 2**n_features
            with np.errstate(over="ignore"):  # the energy of outputs near 1e308 is inf
                dropped = float(np.sum((coef[~within] * scale) ** 2))
            metadata = {"exact": True, "energy_above_max_order": dropped}
            variance = float(np.sum(coef[1:] ** 2))  # row 0 is the empty set
            above = float(np.sum(coef[~within] ** 2))
            shift = _shapley_shift(masks, coef, within)
            if variance > 0 and (
                above > TRUNCATION_WARNING * variance or shift > TRUNCATION_WARNING
            ):
                output = j if table.shape[1] > 1 else None
                _warn_truncated(above / variance, shift, self.max_order, n_features, output)
            out.append(OutputFit(rows, coef[within] * scale, metadata))
        return out

    def explain(
        self,
        value_function: MaskFunction | ValueFunction,
        n_features: int,
        budget: int,
        *,
        feature_names: Sequence[str] | None = None,
        executor: Executor | None = None,
        cache: str | os.PathLike | MaskStore | None = None,
        fingerprint: str | None = None,
        retries: int = DEFAULT_RETRIES,
    ) -> Interactions | list[Interactions]:
        """Explain ``value_function`` with at most ``budget`` model calls.

        Args:
            value_function: Callable mapping a boolean ``(k, n_features)`` mask
                array (True = feature kept) to ``(k,)`` values, or to
                ``(k, n_outputs)`` for several outputs at once, or a
                :class:`ValueFunction`.
            n_features: Number of features ``n``.
            budget: Largest number of distinct masks sent to the model.
            feature_names: Optional names, one per feature.
            executor: Send the batches of masks to this
                ``concurrent.futures.Executor`` (a thread or process pool, a
                Dask client or its ``get_executor()``, a
                :class:`~proxyspex_captum.core.executors.RayExecutor`); the
                result is the same as serially, bit for bit.
            cache: A file (or an open
                :class:`~proxyspex_captum.core.cache.MaskStore`) keeping every
                value paid for, written batch by batch: rerunning after a
                crash, or with another budget or method, only calls the model
                on masks it does not hold.
            fingerprint: Names the value function in ``cache`` (model, input,
                target); a file written for another fingerprint is refused.
                Default: the value function's ``fingerprint`` attribute.
            retries: Times a batch that failed on ``executor`` is sent again.

        Returns:
            An :class:`Interactions`, or a list of them (one per output) when
            the value function returns a 2-D array.
        """
        n_features = check_int("n_features", n_features, 1)
        budget = self.check_budget(n_features, budget)
        feature_names = check_feature_names(feature_names, n_features)
        executor = check_executor(executor)
        if fingerprint is None and cache is not None and not isinstance(cache, MaskStore):
            fingerprint = getattr(value_function, "fingerprint", None)
        store = open_store(cache, fingerprint, n_features)
        try:
            vf = ValueFunction.wrap(
                value_function,
                n_features,
                batch_size=self.batch_size,
                show_progress=self.show_progress,
                description=f"{type(self).__name__} model calls",
                executor=executor,
                store=store,
                retries=retries,
            )
            return self._explain_with(vf, n_features, budget, feature_names)
        finally:
            if store is not None and store is not cache:
                store.close()

    def _explain_with(
        self,
        vf: ValueFunction,
        n_features: int,
        budget: int,
        feature_names: Sequence[str] | None,
    ) -> Interactions | list[Interactions]:
        queries_before, requested_before = vf.n_queries, vf.n_requested
        model_seconds_before = vf.seconds
        tic = time.perf_counter()
        if n_features <= EXACT_MAX_FEATURES and budget >= 2**n_features:
            per_output = self._exact(vf, n_features)
            resamples: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in per_output]
        else:
            rng = as_generator(self.random_state)
            # A subclass may return plain (rows, values, metadata) triples: nothing to resample.
            per_output = [OutputFit(*fit) for fit in self._explain(vf, n_features, budget, rng)]
            resamples = self._resample(per_output, rng)
        model_seconds = vf.seconds - model_seconds_before
        own_seconds = time.perf_counter() - tic - model_seconds
        n_masks = vf.n_requested - requested_before
        new_calls = vf.n_queries - queries_before
        results = []
        for j, (fit, output_resamples) in enumerate(zip(per_output, resamples, strict=True)):
            rows, values, metadata = fit.rows, fit.values, fit.metadata
            if output_resamples:
                metadata = {**metadata, "n_resamples": len(output_resamples)}
            metadata = {
                "method": self.name,
                "budget": budget,
                "max_order": self.max_order,
                "algorithm_seconds": own_seconds,
                "model_seconds": model_seconds,
                # n_queries counts the masks the result is built on; these, the
                # ones that cost a model call now (the rest came from the cache).
                "new_model_calls": new_calls,
                "cached_masks": n_masks - new_calls,
                **metadata,
            }
            _warn_if_poor(metadata, None if vf.n_outputs is None else j)
            results.append(
                Interactions._from_rows(
                    rows,
                    values,
                    n_features=n_features,
                    feature_names=feature_names,
                    n_queries=n_masks,
                    metadata=metadata,
                    resamples=output_resamples,
                )
            )
        return results[0] if vf.n_outputs is None else results

    def _resample(
        self, per_output: PerOutput, rng: np.random.Generator
    ) -> list[list[tuple[np.ndarray, np.ndarray]]]:
        """Each output's refits on the same bootstrap resamples of the samples (no model call)."""
        if not self.uncertainty:
            return [[] for _ in per_output]
        # After the fit, so the estimate is the same either way (a Generator passed as
        # random_state moves on by this one draw).
        seed = resample_seed(rng)
        # The refits' worker threads must not enter warnings.catch_warnings themselves
        # (not thread-safe): they run under the filters set here, in the calling thread.
        with fitting():
            return [
                []
                if fit.refit is None
                else bootstrap(
                    fit.refit, fit.n_samples, self.n_resamples, seed, n_workers=self._n_threads()
                )
                for fit in per_output
            ]

    def _n_threads(self) -> int:
        """Threads the bootstrap refits run on (the result does not depend on it)."""
        return 1

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


def _shapley_shift(masks: np.ndarray, coef: np.ndarray, within: np.ndarray) -> float:
    """How far the Fourier terms outside ``within`` move the Shapley values.

    The largest change of a feature's Shapley value when they are dropped, over
    the largest Shapley value (0 when every value is 0). A parity over ``S`` gives
    each of its features ``-2/|S|`` when ``|S|`` is odd and nothing when even, so
    a little variance of odd order can move the values more than its share: a
    product of 6 features next to their sum (0.1 % of the variance) moved them 2.7 %.
    """
    sizes = masks.sum(axis=1)
    weights = np.where(sizes % 2 == 1, -2.0 * coef / np.maximum(sizes, 1), 0.0)
    shapley = weights @ masks
    dropped = np.where(within, 0.0, weights) @ masks
    peak = float(np.abs(shapley).max(initial=0.0))
    return float(np.abs(dropped).max(initial=0.0)) / peak if peak > 0 else 0.0


def _warn_truncated(
    share: float, shift: float, max_order: int, n_features: int, output: int | None
) -> None:
    where = "" if output is None else f" (output {output})"
    warnings.warn(
        PoorFitWarning(
            f"Every mask was queried, but {share:.1%} of the model's variance{where} lies in "
            f"interactions of more than max_order={max_order} features, which the result "
            "leaves out: its values (Shapley values included) are those of the model without "
            f"them (they move a Shapley value by {shift:.1%} of the largest). Pass "
            f"max_order={n_features} to keep every order."
        ),
        stacklevel=5,
    )


def _warn_if_poor(metadata: dict[str, Any], output: int | None) -> None:
    r2 = metadata.get("cv_r2")
    if r2 is None or not np.isfinite(r2) or r2 >= POOR_FIT_R2:
        return
    where = "" if output is None else f" (output {output})"
    warnings.warn(
        PoorFitWarning(
            f"The interactions reproduce the model poorly{where}: cross-validated R² "
            f"{r2:.2f} on the calls made (1 = exact). Raise the budget, lower max_order, "
            "use coarser features, or check whether the model's output is noisy."
        ),
        stacklevel=4,
    )


def check_sample_values(values: Any, n_samples: int) -> np.ndarray:
    """``values`` of ``n_samples`` samples as a finite float ``(n_samples, n_outputs)`` array.

    For the estimators' fits on samples already paid for; a mismatch is an
    error rather than a silent reshape of several outputs into one.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim not in (1, 2) or values.shape[0] != n_samples:
        raise ValueError(
            f"Expected values of shape ({n_samples},) or ({n_samples}, n_outputs), one row "
            f"per mask; got {values.shape}."
        )
    if not np.isfinite(values).all():
        raise ValueError("The values contain NaN or infinite entries.")
    return values.reshape(n_samples, -1)


def power_of_two_scale(values: np.ndarray) -> float:
    """A power of two near the largest ``|value|`` (1.0 for zeros).

    The estimators fit ``values / scale`` and multiply the coefficients back:
    dividing by a power of two is exact, and the fit's sums of squares then
    neither overflow (outputs near 1e300) nor underflow (near 1e-300).

    Examples:
        >>> power_of_two_scale(np.array([3.0, -1e300])) == 2.0**996
        True
    """
    peak = float(np.max(np.abs(values), initial=0.0))
    if peak == 0.0 or not np.isfinite(peak):
        return 1.0
    # peak = f · 2**e with f in [0.5, 1): values / 2**(e-1) lie within [-2, 2). The
    # bounds keep the scale itself finite and normal (outputs up to 1.8e308, down to 5e-324).
    exponent = int(np.frexp(peak)[1]) - 1
    return math.ldexp(1.0, min(max(exponent, -1022), 1023))


def centre_and_scale(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(z, centre, scale)`` with ``values = centre + scale · z`` and ``|z| < 4``.

    ``centre`` is one of the values (the lower median) and ``scale`` a power of
    two, so nothing overflows on the way (outputs near ±1.8e308) and ``z``
    keeps the values' spread, not their level: an output like
    ``1000 + 1e-4·g(m)`` would round to a constant in the float32 labels
    LightGBM keeps, and its squares near ``1e-300`` to zero.

    Examples:
        >>> z, centre, scale = centre_and_scale(np.array([1000.0, 1000.0 + 2**-20]))
        >>> z.tolist(), centre, scale == 2.0**-20
        ([0.0, 1.0], 1000.0, True)
    """
    level = power_of_two_scale(values)
    z = values / level  # exact: within [-2, 2)
    centre = float(np.partition(z, (len(z) - 1) // 2)[(len(z) - 1) // 2])
    z = z - centre
    # Scaled up only: the spread's scale times the level's stays finite.
    spread = min(power_of_two_scale(z), 1.0)
    return z / spread, centre * level, spread * level


class EstimatorOwner:
    """Mixin of the adapters (Captum attributions, SHAP explainers) that run an estimator.

    Subclasses set ``estimator_class`` and call :meth:`_init_estimator` from
    their ``__init__`` with their own arguments.
    """

    estimator_class: type[InteractionEstimator]
    estimator: InteractionEstimator
    index: str

    def _init_estimator(
        self, *, max_order: int | None, index: str, random_state: Any, options: dict[str, Any]
    ) -> None:
        from .interactions import check_index

        self.index = check_index(index)
        self.estimator = make_estimator(
            self.estimator_class,
            max_order=max_order,
            random_state=random_state,
            options=options,
            owner=type(self).__name__,
        )


def make_estimator(
    estimator_class: type[InteractionEstimator],
    *,
    max_order: int | None,
    random_state: Any,
    options: dict[str, Any],
    owner: str,
) -> InteractionEstimator:
    """Build an estimator from an adapter's arguments (``max_order=None``: its default).

    The adapters (Captum attributions, SHAP explainers) take the estimator's
    options as ``**kwargs``; a wrong name is reported against the adapter.
    """
    if max_order is not None:
        options = {**options, "max_order": max_order}
    try:
        return estimator_class(random_state=random_state, **options)
    except TypeError as err:
        raise TypeError(
            f"{owner}: {str(err).rstrip('.')}. Estimator options are the keyword arguments of "
            f"{estimator_class.__name__}."
        ) from err
