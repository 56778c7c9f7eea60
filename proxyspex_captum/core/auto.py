"""AutoSPEX: ProxySPEX or SPEX, chosen from the budget and from the calls made.

SPEX wins when interactions are not hierarchical (an effect only the whole set
has, parity-like), ProxySPEX when they are: a tree proxy finds an interaction
through its parts, and needs uniform masks to learn from. AutoSPEX spends one
budget in stages and decides from what it has bought:

1. **Plan, from the budget alone** (:meth:`AutoSPEX.plan`). If SPEX's coded
   design for this budget would alias the spectrum into fewer than
   ``min_bins`` bins a group, peeling decodes little (SPEX's own design rule
   prefers :data:`~.spex.PREFERRED_BINS`, 16), and the whole budget goes to
   uniform masks for ProxySPEX: the result is then exactly
   ``ProxySPEX(...).explain`` with the same seed. A budget that covers all
   ``2**n`` masks gives the exact transform, as for every estimator.
2. **Otherwise, SPEX's design:** its coded masks, then uniform masks for the
   rest of the budget (as :meth:`.SPEX.design`), one model call.
3. **Two fits on those samples:** SPEX decodes and refits; ProxySPEX trains its
   tree proxy on *every* sample, coded ones included (a coded mask with
   ``ℓ ≠ 0`` is uniformly distributed on its own, and the proxy only needs
   samples, not independent ones).
4. **The one that cross-validates better** on those samples is the result
   (each method's ``cv_r2`` is a 5-fold estimate from the calls already made).
   When SPEX's own ``cv_r2`` is at least :data:`SPEX_EXACT` (0.999), ProxySPEX
   is not fitted at all: it could not win by more than the 0.001 left.

On the tuning games of ``benchmarks/`` (never on a report set), ProxySPEX
trained on SPEX's samples was within −0.002 to +0.007 R² of ProxySPEX on
uniform masks in every hierarchical and SOUM cell with a 16-bin design
(``docs/design.md``, "AutoSPEX").

``metadata`` says what happened: ``route`` (``"uniform"``, ``"coded"`` or
``"exact"``), ``chosen`` (``"proxyspex"`` or ``"spex"``; ``None`` when exact),
``reason``, each candidate's ``cv_r2`` (``cv_r2_proxyspex``, ``cv_r2_spex``;
``None`` for a fit not made) and ``stages`` (what each stage spent), next to
the chosen method's own metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import EXACT_MAX_FEATURES, InteractionEstimator, OutputFit, PerOutput
from .checks import check_int
from .proxyspex import ProxySPEX
from .sampling import child_generator, uniform_masks
from .spex import PREFERRED_BINS, SPEX
from .uncertainty import DEFAULT_RESAMPLES
from .value_function import ValueFunction

__all__ = ["AutoSPEX"]

#: Fewest bins a group SPEX's design must have for AutoSPEX to buy it (SPEX's own
#: preferred floor: fewer bins peel little, and the coded masks then cost
#: ProxySPEX more than SPEX gains; measured in docs/design.md, "AutoSPEX").
MIN_BINS = PREFERRED_BINS
#: SPEX's cross-validated R² from which ProxySPEX is not fitted on the coded route:
#: it could not beat SPEX by more than the 0.001 left to explain.
SPEX_EXACT = 0.999
# Options AutoSPEX sets for both methods itself: passing them per method is refused.
_SHARED = (
    "max_order",
    "random_state",
    "batch_size",
    "show_progress",
    "uncertainty",
    "n_resamples",
)


class AutoSPEX(InteractionEstimator):
    """ProxySPEX or SPEX, whichever the budget and the calls made say fits better.

    Args:
        max_order: Largest interaction order, for both methods (default 4).
        min_bins: SPEX's coded design is bought only when it has at least this
            many bins a group (``2**b``, default 16); below, every call goes to
            ProxySPEX's uniform masks.
        proxyspex_options: Further keyword arguments of
            :class:`~proxyspex_captum.ProxySPEX` (``max_depth``, ``n_jobs``, ...).
        spex_options: Further keyword arguments of
            :class:`~proxyspex_captum.SPEX` (``n_groups``, ``decoder``, ...).
            Each method has its own ``n_jobs`` (both default to a thread per
            core): to keep AutoSPEX on one thread, pass ``n_jobs=None`` in both.
        random_state: Seed or ``numpy.random.Generator``; the same seed gives
            the same masks and the same result.
        batch_size: Largest number of masks per model call.
        show_progress: Show a progress bar over the model calls.
        uncertainty: Bootstrap the chosen method's refit (see
            :class:`~proxyspex_captum.ProxySPEX`); when SPEX is chosen its
            intervals hold its decoded support fixed and are too narrow where
            peeling missed terms (``docs/uncertainty.md``).
        n_resamples: Bootstrap resamples when ``uncertainty`` is on.

    Examples:
        >>> import proxyspex_captum as psx
        >>> game = psx.games.fourier_game(64, n_terms=20, max_order=3, random_state=0)
        >>> auto = psx.AutoSPEX(max_order=3, random_state=0)
        >>> inter = auto.explain(game, n_features=64, budget=1500)
        >>> inter.metadata["route"], inter.metadata["chosen"], inter.n_queries
        ('coded', 'spex', 1500)
        >>> round(psx.faithfulness(inter, game), 2)
        1.0
        >>> route, reason = auto.plan(64, 500)  # too few calls for 16 bins: ProxySPEX
        >>> route, reason[:39]
        ('uniform', "SPEX's design would have 8 bins a group")
    """

    name = "autospex"

    def __init__(
        self,
        *,
        max_order: int = 4,
        min_bins: int = MIN_BINS,
        proxyspex_options: Mapping[str, Any] | None = None,
        spex_options: Mapping[str, Any] | None = None,
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
        self.min_bins = check_int("min_bins", min_bins, 2)
        self.proxyspex_options = _options("proxyspex_options", proxyspex_options)
        self.spex_options = _options("spex_options", spex_options)
        if self.proxyspex_options.get("keep_probability", 0.5) != 0.5:
            raise ValueError(
                "AutoSPEX samples every feature with probability 0.5 (SPEX's design does); "
                "for another keep_probability use ProxySPEX."
            )
        if "refit" in self.spex_options and self.spex_options["refit"] is None:
            raise ValueError(
                "AutoSPEX compares SPEX's cross-validated refit with ProxySPEX's: "
                "spex_options cannot set refit=None."
            )
        shared = {"max_order": max_order, "uncertainty": uncertainty, "n_resamples": n_resamples}
        # Built now, so a wrong option fails here rather than after the model calls.
        self.proxyspex = _build(ProxySPEX, "proxyspex_options", shared, self.proxyspex_options)
        self.spex = _build(SPEX, "spex_options", shared, self.spex_options)

    # ------------------------------------------------------------------ plan
    def plan(self, n_features: int, budget: int) -> tuple[str, str]:
        """``(route, reason)`` for ``budget`` calls: ``"uniform"``, ``"coded"`` or ``"exact"``.

        Decided from the budget alone, before any model call.

        Examples:
            >>> import proxyspex_captum as psx
            >>> psx.AutoSPEX(max_order=3).plan(128, 500)[0]
            'uniform'
            >>> psx.AutoSPEX(max_order=3).plan(128, 2000)[0]
            'coded'
        """
        if n_features <= EXACT_MAX_FEATURES and budget >= 2**n_features:
            return "exact", f"the budget covers all 2**{n_features} masks"
        need = self.spex.sampled_min_budget(n_features)
        if budget < need:
            return "uniform", f"SPEX's smallest design needs {need} calls"
        degree, bits = self.spex.choose_design(n_features, budget)
        if 2**bits < self.min_bins:
            return "uniform", (
                f"SPEX's design would have {2**bits} bins a group (code degree {degree}), "
                f"fewer than min_bins={self.min_bins}"
            )
        return "coded", f"SPEX's design has {2**bits} bins a group (code degree {degree})"

    def _min_sampled_budget(self, n_features: int) -> int:
        return ProxySPEX.MIN_BUDGET

    def _exact(self, value_function: ValueFunction, n_features: int) -> PerOutput:
        fits = super()._exact(value_function, n_features)
        route, reason = self.plan(n_features, 2**n_features)  # ("exact", why)
        stages = [{"stage": "exact", "masks": 2**n_features}]
        return [
            _labelled(fit, route, reason, None, stages, cv_r2_proxyspex=None, cv_r2_spex=None)
            for fit in fits
        ]

    def _n_threads(self) -> int:
        return self.proxyspex.n_workers()

    # ------------------------------------------------------------------- run
    def _explain(
        self, value_function: ValueFunction, n_features: int, budget: int, rng: np.random.Generator
    ) -> PerOutput:
        route, reason = self.plan(n_features, budget)
        if route == "uniform":
            # The masks and generator ProxySPEX.explain uses: the same result.
            masks = uniform_masks(n_features, budget, rng)
            fits = self.proxyspex.fit_samples(masks, value_function(masks), rng)
            stages = [{"stage": "uniform", "masks": budget}]
            return [
                _labelled(
                    fit,
                    route,
                    reason,
                    "proxyspex",
                    stages,
                    cv_r2_proxyspex=_cv(fit),
                    cv_r2_spex=None,
                )
                for fit in fits
            ]
        design = self.spex.design(n_features, budget, rng)
        values = value_function(design.samples).reshape(len(design.samples), -1)
        spex_fits = self.spex.fit_design(design, values, rng)
        # Where SPEX cross-validates as near-exact, ProxySPEX cannot do better by
        # more than the margin it would win by: its fit is skipped.
        todo = [j for j, fit in enumerate(spex_fits) if _cv(fit) < SPEX_EXACT]
        proxy_fits: list[OutputFit | None] = [None] * len(spex_fits)
        if todo:
            # On a child generator: the parent then draws the bootstrap's seed as SPEX
            # alone would, so a chosen SPEX carries SPEX's own intervals too.
            child = child_generator(rng)
            fitted = self.proxyspex.fit_samples(design.samples, values[:, todo], child)
            for j, fit in zip(todo, fitted, strict=True):
                proxy_fits[j] = fit
        n_uniform = len(design.samples) - design.n_coded
        stages = [
            {"stage": "coded", "masks": design.n_coded},
            {"stage": "uniform", "masks": n_uniform},
        ]
        out = []
        for spex_fit, proxy_fit in zip(spex_fits, proxy_fits, strict=True):
            cv_spex = _cv(spex_fit)
            cv_proxy = None if proxy_fit is None else _cv(proxy_fit)
            # Ties go to ProxySPEX: its intervals also cover the proxy's choice of terms.
            if proxy_fit is None or cv_spex > cv_proxy:
                chosen, fit = "spex", spex_fit
            else:
                chosen, fit = "proxyspex", proxy_fit
            out.append(
                _labelled(
                    fit,
                    route,
                    reason,
                    chosen,
                    stages,
                    cv_r2_proxyspex=cv_proxy,
                    cv_r2_spex=cv_spex,
                    code_degree=design.code.t,
                    b=int(design.subsampling.shape[2]),
                    coded_masks=design.n_coded,
                    uniform_masks=n_uniform,
                )
            )
        return out


def _options(name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """A method's own options, refusing the ones AutoSPEX sets for both."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"{name} must be a dict of keyword arguments, got {options!r}.")
    clash = sorted(set(options) & set(_SHARED))
    if clash:
        raise ValueError(
            f"{name} cannot set {', '.join(clash)}: pass {'it' if len(clash) == 1 else 'them'} "
            "to AutoSPEX itself, which uses one value for both methods."
        )
    return dict(options)


def _build(
    estimator_class: type, name: str, shared: dict[str, Any], options: dict[str, Any]
) -> Any:
    """One of the two methods, a wrong option named as coming from ``name``."""
    try:
        return estimator_class(**shared, **options)
    except TypeError as err:
        raise TypeError(f"{name}: {err}") from err


def _cv(fit: OutputFit) -> float:
    return float(fit.metadata.get("cv_r2", -np.inf))


def _labelled(
    fit: OutputFit,
    route: str,
    reason: str,
    chosen: str | None,
    stages: list[dict[str, Any]],
    **extra: Any,
) -> OutputFit:
    """``fit`` with AutoSPEX's account of how it was made added to its own metadata.

    The method's own keys stay (``extra`` fills only what it lacks); AutoSPEX's
    four keys are its own, and each output gets its own copy of ``stages``.
    """
    metadata = {
        **{k: v for k, v in extra.items() if k not in fit.metadata},
        **fit.metadata,
        "route": route,
        "chosen": chosen,
        "reason": reason,
        "stages": [dict(stage) for stage in stages],
    }
    return fit._replace(metadata=metadata)
