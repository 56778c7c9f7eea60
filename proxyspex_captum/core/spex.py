"""SPEX: sparse Fourier interactions by coded subsampling and peeling, no proxy.

1. A BCH code (:mod:`.bch`) correcting ``t`` errors gives ``p`` parity rows;
   the delays are the zero row plus those ``p`` rows. ``t = max_order``
   unless that leaves fewer than 16 bins a group: then the largest ``t`` that
   affords 16 (a smaller ``t`` has fewer parity bits, so buys more bins).
2. ``C`` groups, each with a uniform random ``M_c ∈ {0,1}^{n×b}``, query
   ``v(M_c ℓ ⊕ d)`` for every ``ℓ ∈ {0,1}^b`` and delay ``d``: ``C·(p+1)·2^b``
   masks, with ``b`` the largest that fits the budget. The calls the design
   leaves unused are spent on uniformly random masks.
3. A Walsh–Hadamard transform over ``ℓ`` aliases the spectrum into bins,
   ``U_{c,d}[j] = Σ_{k: M_cᵀk = j} F(k)·(−1)^{⟨d,k⟩}``.
4. Peeling: a bin holding one coefficient (a *singleton*) shows its support
   ``k`` in the signs of ``U_{c,d}[j]`` across delays: they are the BCH parity
   bits of ``k``, so decoding them returns ``k``. A found coefficient is
   subtracted from its bin in every group, which turns other bins into
   singletons; repeat until nothing peels.
5. Unlike the references, a final refit on every sample (coded and uniform):
   by default the candidate with the least cross-validated error among a
   ridge refit of the peeled support, a lasso over the support and the main
   effects, and a linear model, so a budget too small to peel much still gives
   a faithful (if first-order) result; ``metadata["cv_r2"]`` is its
   cross-validated R², at no extra model calls.

Improvements over the reference implementation: all randomness from one seeded
generator, soft decoding only where the hard decision fails, Chase candidates
ranked by their correlation with the observations, and a bin taken as a
singleton only when its found support explains it (so a bin of noise, or of
several terms, is not read as one term).
"""

from __future__ import annotations

from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import (
    InteractionEstimator,
    OutputFit,
    PerOutput,
    check_sample_values,
    power_of_two_scale,
)
from .bch import BCHCode
from .checks import check_int, check_n_jobs, check_optional_int, check_real, threads_for
from .ridge import ridge_gcv
from .sampling import coded_masks, each_from_the_same_draws, uniform_masks
from .sparse_fit import (
    LINEAR_CANDIDATES,
    PATH_PATIENCE,
    CVErrors,
    fit_linear,
    fitting,
    fold_indices,
    lasso_alphas,
    lasso_fit,
    lasso_path_sse,
    relaxed,
    ridge_sse,
    score_linear,
    screen,
    tie_tolerance,
)
from .subsets import PAD, fourier_features, pad_sets, singletons, with_intercept
from .uncertainty import DEFAULT_RESAMPLES, Refit
from .value_function import ValueFunction, unique_masks
from .walsh import fwht

__all__ = ["DEFAULT_MAX_CHASE", "PREFERRED_BINS", "SPEX", "CodedDesign"]

# Fewest bits b of a design (2**b bins a group), and the fewest worth keeping t for:
# below 2**4 bins a lower t that buys more is taken (measured on planted games at
# n = 128, budget 1,000: t = 5 with 8 bins R² 0.55, t = 2 with 16 bins 0.97).
_MIN_BITS = 3
_PREFERRED_BITS = 4
#: The bins a group SPEX's design aims for (``2**4``): fewer peel little.
PREFERRED_BINS = 2**_PREFERRED_BITS
_MIN_DEGREE = 2
#: The Chase decoder's depth when ``chase_depth`` is None: ``min(t, DEFAULT_MAX_CHASE)``.
DEFAULT_MAX_CHASE = 6
# Folds of the refit's cross-validation.
_N_FOLDS = 5


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class CodedDesign:
    """The masks of one SPEX run (:meth:`SPEX.design`) and what decoding them needs."""

    code: BCHCode
    #: ``(C, n, b)`` subsampling matrices, one per group.
    subsampling: np.ndarray
    #: ``(C, P, 2**b)``: groups, delays and bins of the coded queries.
    shape: tuple[int, int, int]
    #: ``(N, n)`` distinct masks to query: the coded ones first, then uniform ones.
    samples: np.ndarray
    #: How many of ``samples`` are coded (the rest are uniform).
    n_coded: int
    #: Row of ``samples`` holding each coded query, in ``shape``'s order.
    inverse: np.ndarray


class SPEX(InteractionEstimator):
    """Sparse interactions by BCH-coded subsampling and a peeling decoder.

    Args:
        max_order: Largest interaction order (default 5): the code corrects
            ``t = max_order`` errors unless the budget then affords fewer than
            16 bins a group; see ``code_degree``.
        code_degree: ``t``, the largest order the peeling can decode; ``None``
            (default): ``max_order``, or the largest ``t >= 2`` whose design
            has 16 bins a group, or failing that the most bins. The chosen
            ``t`` and ``b`` are in ``metadata`` (``code_degree``, ``b``).
        decoder: ``"soft"`` (Chase decoding where the hard decision fails) or ``"hard"``.
        chase_depth: Least-reliable parity positions the Chase decoder flips
            (all ``2**chase_depth`` patterns); default the code degree ``t``,
            at most :data:`DEFAULT_MAX_CHASE` (each flip doubles the patterns:
            at ``t = 21`` they needed 64 GiB, after every call was paid).
        n_groups: Number of subsampling groups ``C``.
        refit: ``"auto"`` (default): the candidate with the least
            cross-validated error among ``"support"``, a lasso over the peeled
            support and the main effects, and a linear model (ridge, or lasso
            over the main effects): interactions are kept only when they pay.
            ``"support"``: refit the peeled coefficients and the intercept by
            ridge regression on every sample, which removes the peeling's bias
            under noise (R² 0.9965 → 0.9996 on a noisy flat game, n = 1,000);
            ``"support+main"``: also every main effect, kept where they stand
            out of the noise; ``None``: the peeled coefficients as they are, as
            the references do (no ``cv_r2`` then).
        residual_cutoff: A bin is accepted as a singleton when the decoded
            coefficient leaves less than this share of the bin's energy.
        max_iterations: Most peeling rounds.
        n_jobs: Threads the ``"auto"`` refit's cross-validation folds run on
            (each fold single-threaded, their errors summed in fold order, so
            the result is the same for any ``n_jobs``): ``"auto"`` (default)
            or an int ``<= 0``: one per usable core; ``None`` or 1: one after
            the other.
        random_state: Seed or ``numpy.random.Generator``.
        batch_size: Largest number of masks per model call.
        show_progress: Show a progress bar over the model calls.
        uncertainty: Refit the chosen refit on ``n_resamples`` bootstrap
            resamples of the calls made (no model call) and keep them, for
            :meth:`~proxyspex_captum.Interactions.intervals`. Off by default:
            the decoded support stays fixed (the coded design cannot be
            resampled), so the intervals are those of the refit *given* that
            support, and where peeling misses or mis-decodes terms they are far
            too narrow (they covered 13-79 % of the found planted coefficients
            in ``benchmarks/results/uncertainty_report.md``, ProxySPEX's
            87-100 %). Needs a ``refit``.
        n_resamples: Bootstrap resamples when ``uncertainty`` is on.

    Examples:
        >>> import proxyspex_captum as psx
        >>> game = psx.games.PlantedGame({(3,): 1.0, (7, 40): -2.0, (1, 2, 5): 0.5}, n_features=64)
        >>> inter = psx.SPEX(max_order=3, random_state=0).explain(game, n_features=64, budget=3000)
        >>> {s: round(v, 6) for s, v in inter.mobius.items() if abs(v) > 1e-6}
        {(3,): 1.0, (7, 40): -2.0, (1, 2, 5): 0.5}
    """

    name = "spex"
    _budget_hint = (
        ", lower max_order (the code's parity bits grow with it), or use ProxySPEX, "
        "which works from 100 calls"
    )

    def __init__(
        self,
        *,
        max_order: int = 5,
        code_degree: int | None = None,
        decoder: str = "soft",
        chase_depth: int | None = None,
        n_groups: int = 3,
        refit: str | None = "auto",
        residual_cutoff: float = 0.5,
        max_iterations: int = 50,
        n_jobs: int | str | None = "auto",
        random_state: int | np.random.Generator | None = None,
        batch_size: int | str | None = "auto",
        show_progress: bool = False,
        uncertainty: bool = False,
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
        if decoder not in ("soft", "hard"):
            raise ValueError(f"decoder must be 'soft' or 'hard', got {decoder!r}.")
        if refit not in (None, "auto", "support", "support+main"):
            raise ValueError(
                f"refit must be None, 'auto', 'support' or 'support+main', got {refit!r}."
            )
        self.code_degree = check_optional_int("code_degree", code_degree, 1, self.max_order)
        self.decoder = decoder
        # 2**chase_depth candidate patterns per bin: 16 flips already mean 65,536.
        self.chase_depth = check_optional_int("chase_depth", chase_depth, 0, 16)
        self.n_groups = check_int("n_groups", n_groups, 1)
        self.refit = refit
        self.residual_cutoff = check_real(
            "residual_cutoff", residual_cutoff, 0.0, 1.0, low_open=True, high_open=True
        )
        self.max_iterations = check_int("max_iterations", max_iterations, 1)
        self.n_jobs = check_n_jobs(n_jobs)

    @property
    def makes_resamples(self) -> bool:
        """Whether results carry resamples: ``uncertainty`` on and a ``refit`` to redo."""
        return self.uncertainty and self.refit is not None

    def _queries_per_bin(self, n_features: int, degree: int | None = None) -> int:
        """``C·(p+1)``: masks per bin index for a code of ``degree`` (default the largest)."""
        degree = self._degrees(n_features)[0] if degree is None else degree
        return self.n_groups * (BCHCode(n_features, degree).n_parity + 1)

    def _degrees(self, n_features: int) -> list[int]:
        """The code degrees ``t`` the design may use, largest first.

        At most ``n_features``: no set is larger, and a code of a higher degree
        only spends calls on parities (and bins) that decode nothing more.
        """
        top = min(self.max_order if self.code_degree is None else self.code_degree, n_features)
        if self.code_degree is not None:
            return [top]
        return list(range(top, min(top, _MIN_DEGREE) - 1, -1))

    def _min_sampled_budget(self, n_features: int) -> int:
        per_bin = min(self._queries_per_bin(n_features, t) for t in self._degrees(n_features))
        return per_bin * 2**_MIN_BITS

    def bits_for_budget(self, n_features: int, budget: int, degree: int | None = None) -> int:
        """The largest ``b`` with ``C·(p+1)·2^b <= budget`` (at most ``n``).

        ``p`` is the parity count of the code of ``degree`` (default the largest the
        design may use: ``max_order``, at most ``n_features``).
        """
        per_bin = self._queries_per_bin(n_features, degree)
        return min(int(np.floor(np.log2(budget / per_bin))), n_features)

    def choose_design(self, n_features: int, budget: int) -> tuple[int, int]:
        """The code degree ``t`` and bits ``b`` used for ``budget`` calls.

        The largest ``t`` whose design has ``2**4`` bins a group; failing that the
        one with the most bins (ties: the larger ``t``).
        """
        options = [
            (t, self.bits_for_budget(n_features, budget, t)) for t in self._degrees(n_features)
        ]
        for t, b in options:
            if b >= _PREFERRED_BITS:
                return t, b
        return max(options, key=lambda option: (option[1], option[0]))

    def _explain(
        self, value_function: ValueFunction, n_features: int, budget: int, rng: np.random.Generator
    ) -> PerOutput:
        design = self.design(n_features, budget, rng)
        return self.fit_design(design, value_function(design.samples), rng)

    def design(self, n_features: int, budget: int, rng: np.random.Generator) -> CodedDesign:
        """The masks SPEX queries for ``budget`` calls: its coded design, then uniform ones.

        Queries repeat across groups (at ``ℓ = 0`` the mask is the delay itself):
        each distinct mask is one sample, and what the design leaves of the
        budget goes to uniformly random masks for the refit.

        Examples:
            >>> import numpy as np
            >>> import proxyspex_captum as psx
            >>> spex = psx.SPEX(max_order=2)
            >>> design = spex.design(32, 1000, np.random.default_rng(0))
            >>> design.samples.shape, design.n_coded <= 1000
            ((1000, 32), True)
            >>> game = psx.games.PlantedGame({(3, 9): 2.0}, n_features=32)
            >>> (fit,) = spex.fit_design(design, game(design.samples), np.random.default_rng(0))
            >>> round(fit.metadata["cv_r2"], 6)
            1.0
        """
        n_features = check_int("n_features", n_features, 1)
        need = self.sampled_min_budget(n_features)
        if check_int("budget", budget, 1) < need:
            raise ValueError(
                f"SPEX's smallest design for {n_features} features needs {need} calls, got "
                f"{budget}. Raise the budget{self._budget_hint}."
            )
        degree, b = self.choose_design(n_features, budget)
        code = BCHCode(n_features, degree)
        delays = np.vstack([np.zeros((1, n_features), bool), code.parity_matrix.T])
        subsampling, masks = coded_masks(n_features, b, delays, self.n_groups, rng)
        flat = masks.reshape(-1, n_features)
        _, distinct, inverse = unique_masks(flat)
        extra = _fresh_uniform_masks(n_features, budget - len(distinct), flat[distinct], rng)
        return CodedDesign(
            code=code,
            subsampling=subsampling,
            shape=masks.shape[:3],
            samples=np.vstack([flat[distinct], extra]),
            n_coded=len(distinct),
            inverse=inverse,
        )

    def fit_design(
        self, design: CodedDesign, sample_values: np.ndarray, rng: np.random.Generator
    ) -> PerOutput:
        """Decode and refit each output from the values of ``design.samples`` (one row each).

        ``sample_values``: ``(N,)``, or ``(N, n_outputs)`` for several outputs.
        See :meth:`design` for an example.
        """
        sample_values = check_sample_values(sample_values, len(design.samples))
        values = sample_values[design.inverse]  # the coded design's values, repeats included
        columns = zip(values.T, sample_values.T, strict=True)
        return each_from_the_same_draws(rng, columns, lambda ys: self._fit_one(design, *ys, rng))

    def _fit_one(
        self, design: CodedDesign, y: np.ndarray, y_samples: np.ndarray, rng: np.random.Generator
    ) -> OutputFit:
        """Decode and refit one output (``y``: the coded design's values, repeats included)."""
        samples, b = design.samples, design.subsampling.shape[2]
        # Decode y / scale (exact: a power of two), so outputs near 1e±300 neither
        # overflow nor underflow in the bins' energies.
        scale = power_of_two_scale(y_samples)
        y, y_samples = y / scale, y_samples / scale
        bins = fwht(y.reshape(design.shape).transpose(2, 0, 1)).transpose(1, 2, 0) / 2**b
        peeled = _Peeler(self, design.code, design.subsampling, bins).run()
        rows, coef = peeled.rows_and_values()
        info = {
            "code_degree": design.code.t,
            "b": b,
            "n_groups": design.subsampling.shape[0],  # the design's, whoever built it
            "coded_masks": design.n_coded,
            "uniform_masks": len(samples) - design.n_coded,
            "n_peeled": len(peeled.found),
            **peeled.diagnostics,
        }
        if self.refit is None:  # the peeled coefficients: nothing fitted on the samples
            return OutputFit(rows, coef * scale, info)
        with fitting():
            rows, coef, refit_info, key = self._refit(samples, y_samples, rows, rng)
        info.update(refit_info)
        support = rows[(rows != PAD).any(axis=1)]
        return OutputFit(
            rows,
            coef * scale,
            info,
            self._resampled_refit(samples, y_samples, support, key, scale),
            len(samples),
        )

    def _resampled_refit(
        self, masks: np.ndarray, y: np.ndarray, support: np.ndarray, key: Hashable, scale: float
    ) -> Refit:
        """The chosen refit on a resample of the samples; the decoded support stays.

        The support comes from the coded design, which a resample cannot redo, so
        SPEX's intervals show the refit's uncertainty given that support (the
        lasso candidates still drop or keep terms per resample).
        """

        # The features of every sample, computed once: a resample takes their rows.
        peeled = fourier_features(masks, support)
        main = fourier_features(masks, singletons(masks.shape[1]))

        def refit(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rows, coef = self._fit_candidate(
                masks[indices],
                peeled[indices],
                main[indices],
                y[indices],
                support,
                key,
                unshrunk=True,
            )
            return rows, coef * scale

        return refit

    def _refit(
        self, masks: np.ndarray, y: np.ndarray, rows: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any], Hashable]:
        """Refit on every distinct sample; ``"auto"`` picks the candidate by cross-validation.

        Returns the refit's terms, its metadata and the chosen candidate's key
        (for :meth:`_fit_candidate`, which the bootstrap resamples call).
        """
        spread = float(np.sum((y - y.mean()) ** 2))
        nonempty = (rows != PAD).any(axis=1)  # the intercept is fitted apart
        support = rows[nonempty]
        if self.refit == "support+main":
            out_rows, out_coef, gcv = self._refit_with_main(masks, y, support)
            info = {"refit": "support+main", "cv_r2": _r2(gcv * len(y), spread)}
            return out_rows, out_coef, info, "support+main"
        peeled = fourier_features(masks, support)
        if self.refit == "support":
            fit = ridge_gcv(peeled, y)
            cv_r2 = _r2(fit.gcv * len(y), spread)  # GCV: leave-one-out, no extra model calls
            out_rows, out_coef = with_intercept(support, fit.coef, fit.intercept)
            return out_rows, out_coef, {"refit": "support", "cv_r2": cv_r2}, "support"
        main = fourier_features(masks, singletons(masks.shape[1]))
        both = np.hstack([peeled, main])

        def fold_errors(fold: tuple[np.ndarray, np.ndarray]) -> CVErrors:
            train, test = fold
            errors = CVErrors()
            errors.add("support", ridge_sse(peeled[train], y[train], peeled[test], y[test])[0])
            keep = _support_and_screened(peeled.shape[1], both[train], y[train])
            x = both[:, keep]
            alphas = lasso_alphas(x[train], y[train])
            sse = lasso_path_sse(
                x[train], y[train], x[test], y[test], alphas, patience=PATH_PATIENCE
            )
            errors.add_path("support+main-lasso", sse)
            score_linear(errors, main, y, train, test)
            return errors

        # The folds are independent: on threads (the lasso and BLAS release the GIL),
        # their errors merged in fold order, the same sums as one fold after another.
        folds = list(fold_indices(len(y), _N_FOLDS, rng))
        workers = min(threads_for(self.n_jobs), len(folds))
        if workers == 1:  # in the calling thread, under its numpy and sklearn settings
            per_fold = [fold_errors(fold) for fold in folds]
        else:
            with ThreadPoolExecutor(workers) as pool:
                per_fold = list(pool.map(fold_errors, folds))
        errors = CVErrors()
        for fold in per_fold:
            errors.merge(fold)
        name, key = errors.best(tie_tolerance(y))  # near-equal errors: the first candidate
        info = {"refit": name, "cv_r2": _r2(errors.sse[key], spread)}
        return (*self._fit_candidate(masks, peeled, main, y, support, key), info, key)

    def _fit_candidate(
        self,
        masks: np.ndarray,
        peeled: np.ndarray,
        main: np.ndarray,
        y: np.ndarray,
        support: np.ndarray,
        key: Hashable,
        *,
        unshrunk: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fit the refit candidate ``key`` on the decoded ``support`` (non-empty sets).

        ``peeled`` and ``main`` are the ``±1`` features of the support and of
        every main effect on ``masks``. ``unshrunk``: refit a lasso's selection
        without its penalty (:func:`~.sparse_fit.relaxed`), as the bootstrap
        resamples do.
        """
        if key == "support+main":
            return self._refit_with_main(masks, y, support)[:2]
        if key == "support":
            fit = ridge_gcv(peeled, y)
            return with_intercept(support, fit.coef, fit.intercept)
        singles = singletons(masks.shape[1], support.shape[1])
        if key in LINEAR_CANDIDATES or (isinstance(key, tuple) and key[0] in LINEAR_CANDIDATES):
            columns, beta, intercept = fit_linear(key, main, y)
            if unshrunk and key != "linear":
                beta, intercept = relaxed(main[:, columns], y)
            return with_intercept(singles[columns], beta, intercept)
        both = np.hstack([peeled, main])
        keep = _support_and_screened(peeled.shape[1], both, y)
        x = both[:, keep]
        beta, intercept = lasso_fit(x, y, lasso_alphas(x, y)[key[1]])  # type: ignore[index]
        candidates = np.vstack([support, singles])[keep]
        used = beta != 0
        if unshrunk:
            beta[used], intercept = relaxed(x[:, used], y)
        # A main effect may also be a peeled term: sum duplicates back into one set.
        unique, inverse = np.unique(candidates[used], axis=0, return_inverse=True)
        merged = np.bincount(inverse.ravel(), weights=beta[used], minlength=len(unique))
        return with_intercept(unique, merged, intercept)

    def _refit_with_main(
        self, masks: np.ndarray, y: np.ndarray, support: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Ridge refit of the peeled support and every main effect (``refit="support+main"``)."""
        n = masks.shape[1]
        singles = singletons(n, support.shape[1])
        union, origin = np.unique(np.vstack([support, singles]), axis=0, return_index=True)
        peeled = origin < len(support)
        features = fourier_features(masks, union)
        fit = ridge_gcv(features, y)
        # Main effects added for the refit stay only when they stand out of the
        # noise (about 3 standard errors; the features are near-orthogonal ±1).
        scale = float(np.abs(fit.coef).max(initial=0.0))
        threshold = max(3.0 * np.sqrt(fit.gcv / len(y)), 1e-9 * scale)
        keep = peeled | (np.abs(fit.coef) > threshold)
        if not keep.all():  # refit without the dropped ones, so they leave no bias behind
            union = union[keep]
            fit = ridge_gcv(features[:, keep], y)
        out_rows, out_coef = with_intercept(union, fit.coef, fit.intercept)
        return out_rows, out_coef, fit.gcv


def _fresh_uniform_masks(
    n_features: int, count: int, seen: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``count`` distinct uniform masks that are not rows of ``seen`` (distinct rows).

    Fewer only when fewer than ``count`` masks remain unseen. ``uniform_masks``
    always includes the empty and full masks, and the empty one is a coded query
    already; with few features many draws collide, so they are drawn in rounds.
    """
    empty = np.zeros((0, n_features), dtype=bool)
    if n_features < 62:
        count = min(count, 2**n_features - len(seen))
    if count <= 0:
        return empty
    known = {row.tobytes() for row in np.packbits(seen, axis=1)}
    fresh: list[np.ndarray] = []
    for _ in range(100):  # each round draws as many as still missing, plus the overlap expected
        missing = count - len(fresh)
        if missing <= 0:
            break
        if n_features < 30:
            draw = min(missing + len(known) + 8, 2**n_features)
        else:  # collisions are rare: the empty mask, and chance
            draw = missing + 8
        for row, key in zip(
            (candidates := uniform_masks(n_features, draw, rng)),
            (r.tobytes() for r in np.packbits(candidates, axis=1)),
            strict=True,
        ):
            if key not in known:
                known.add(key)
                fresh.append(row)
    return np.array(fresh[:count], dtype=bool).reshape(-1, n_features) if fresh else empty


def _support_and_screened(n_support: int, both: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Columns of ``[support | main effects]`` a lasso sees: all the support, screened mains."""
    mains = screen(both[:, n_support:], y, max(1, len(y) - n_support)) + n_support
    return np.concatenate([np.arange(n_support), mains])


def _r2(sse: float, spread: float) -> float:
    return 1.0 - sse / spread if spread > 0 else 1.0


class _Peeler:
    """The peeling decoder over the aliased bins ``U[c, d, j]`` of one output."""

    def __init__(
        self, spex: SPEX, code: BCHCode, subsampling: np.ndarray, bins: np.ndarray
    ) -> None:
        self.spex, self.code = spex, code
        self.subsampling = subsampling.astype(np.int64)  # (C, n, b)
        self.bins = bins.copy()  # (C, P, 2**b)
        self.powers = 2 ** np.arange(subsampling.shape[2])
        self.found: dict[bytes, tuple[np.ndarray, float]] = {}
        # Only exactly empty bins are skipped: no noise floor is estimated, as the
        # bins' energies tell noise from a crowded spectrum apart poorly. Noise
        # bins are rejected by the singleton test instead (their decoded support
        # lands in the wrong bin, or explains little of the bin's energy).
        energy = (bins**2).mean(axis=1)  # (C, 2**b): mean over delays
        self.zero = max(1e-24 * float(energy.max(initial=0.0)), 1e-300)
        self.diagnostics: dict[str, Any] = {}

    def bin_of(self, support: np.ndarray) -> np.ndarray:
        """Bin index of ``support`` in every group -> ``(C,)``."""
        parity = self.subsampling[:, support, :].sum(axis=1) & 1  # (C, b)
        return parity @ self.powers

    def signature(self, support: np.ndarray) -> np.ndarray:
        """``(−1)^{⟨d, k⟩}`` for every delay (zero delay first)."""
        k = np.zeros(self.code.n, dtype=bool)
        k[support] = True
        return np.concatenate([[1.0], 1.0 - 2.0 * self.code.parities(k[None])[0]])

    @staticmethod
    def _soft_parities(observed: np.ndarray) -> np.ndarray:
        """``(B, P)`` bin columns -> ``(B, p)`` values ≈ ``(−1)^{parity}·|F|`` plus noise."""
        reference = np.where(observed[:, :1] >= 0, 1.0, -1.0)
        return observed[:, 1:] * reference

    def _check(self, group: int, j: int, support: np.ndarray | None) -> float | None:
        """The coefficient if ``support`` explains bin ``(group, j)``, else ``None``."""
        if support is None or len(support) > self.code.t:
            return None
        if self.bin_of(support)[group] != j:
            return None
        column = self.bins[group, :, j]
        sig = self.signature(support)
        value = float(column @ sig) / len(sig)
        residual = float(np.sum((column - value * sig) ** 2))
        total = float(np.sum(column**2))
        if residual > self.spex.residual_cutoff * total:
            return None
        return value

    def run(self) -> _Peeler:
        n_groups, _, n_bins = self.bins.shape
        pending = np.ones((n_groups, n_bins), dtype=bool)
        rounds = 0
        for rounds in range(1, self.spex.max_iterations + 1):  # noqa: B007 - reported below
            energy = (self.bins**2).mean(axis=1)
            todo = np.argwhere(pending & (energy > self.zero))
            pending[:] = False
            if len(todo) == 0:
                break
            soft = self._soft_parities(self.bins[todo[:, 0], :, todo[:, 1]])
            candidates = self.code.decode(soft < 0)
            values = [
                self._check(int(g), int(j), c) for (g, j), c in zip(todo, candidates, strict=True)
            ]
            failed = [i for i, v in enumerate(values) if v is None]
            if self.spex.decoder == "soft" and failed:
                # Chase only where the hard decision failed or did not explain the bin.
                depth = self.spex.chase_depth
                if depth is None:
                    depth = min(self.code.t, DEFAULT_MAX_CHASE)
                retried = self.code.decode_soft(soft[failed], n_flips=depth)
                for i, support in zip(failed, retried, strict=True):
                    candidates[i] = support
                    values[i] = self._check(int(todo[i, 0]), int(todo[i, 1]), support)
            singles: dict[bytes, tuple[np.ndarray, list[float]]] = {}
            for support, value in zip(candidates, values, strict=True):
                if value is None:
                    continue
                key = np.asarray(support, dtype=np.int64).tobytes()
                singles.setdefault(key, (np.asarray(support, dtype=np.int64), []))[1].append(value)
            if not singles:
                break
            for key, (support, estimates) in singles.items():
                value = float(np.mean(estimates))  # found in several groups: average
                previous = self.found.get(key, (support, 0.0))[1]
                self.found[key] = (support, previous + value)
                sig = self.signature(support)
                for group, j in enumerate(self.bin_of(support)):
                    self.bins[group, :, j] -= value * sig
                    pending[group, j] = True
        self.diagnostics["peeling_rounds"] = rounds
        return self

    def rows_and_values(self) -> tuple[np.ndarray, np.ndarray]:
        supports = [tuple(s.tolist()) for s, _ in self.found.values()]
        values = np.array([v for _, v in self.found.values()])
        rows = pad_sets(supports, width=self.code.t)
        if not any(len(s) == 0 for s in supports):  # always carry the intercept
            rows = np.vstack([np.full((1, rows.shape[1]), PAD), rows])
            values = np.concatenate([[0.0], values])
        return rows, values
